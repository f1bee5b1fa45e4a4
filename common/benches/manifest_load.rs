//! Benchmark: loading the manifest (parse, expand, meaning checks) of the example host
//! and of a generated host with 1,000 services.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

fn example_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pi-host/pi-bootstrap.yaml");
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A manifest with `n` services, each with a unit, a data path and a health check.
pub fn generated(n: usize) -> String {
    let mut text = String::from(
        "version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/pi-config.git\nbackup:\n  repository: /var/backups/x\n  password_file: ~/.config/pi-bootstrap/restic-password\n  max_age: 26h\nservices:\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "  - name: svc-{i}\n    purpose: generated service {i}\n    source: services/svc-{i}\n    unit: systemd/svc-{i}.service\n    data_path: ~/data/svc-{i}\n    backup: backup\n    port: {}\n    health:\n      http: {{url: \"http://127.0.0.1:{}/health\", status: 200}}\n",
            10000 + i,
            10000 + i
        ));
    }
    text
}

fn load(c: &mut Criterion) {
    let example = example_text();
    let big = generated(1000);
    let home = Path::new("/nonexistent-home");
    let env = |_: &str| None;
    let file = Path::new("pi-bootstrap.yaml");
    assert!(common::manifest::load_str(file, &example, home, &env).is_ok(), "the example manifest must load");
    assert!(common::manifest::load_str(file, &big, home, &env).is_ok(), "the generated manifest must load");
    c.bench_function("load example manifest", |b| {
        b.iter(|| common::manifest::load_str(file, black_box(&example), home, &env))
    });
    c.bench_function("load 1000-service manifest", |b| {
        b.iter(|| common::manifest::load_str(file, black_box(&big), home, &env))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = load
}
criterion_main!(benches);
