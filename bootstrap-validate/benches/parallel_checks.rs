//! 20 command checks of `sleep 1` through the runner: they run at once, so one
//! iteration takes about 1 s, not 20.

use std::time::Duration;

use bootstrap_validate::{Check, run};
use common::output::Verbosity;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

fn twenty_sleeps(c: &mut Criterion) {
    let checks: Vec<Check> =
        (1..=20).map(|n| Check::command(&format!("sleep-{n}"), &["sleep", "1"], Duration::from_secs(5))).collect();
    let mut group = c.benchmark_group("parallel_checks");
    // One iteration takes about a second: ten of them, one after the other.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("20 checks of sleep 1", |b| {
        b.iter(|| {
            let run = run(checks.clone(), Verbosity::Quiet);
            assert!(run.passed(), "{:?}", run.report(false).items);
        });
    });
    group.finish();
}

criterion_group!(benches, twenty_sleeps);
criterion_main!(benches);
