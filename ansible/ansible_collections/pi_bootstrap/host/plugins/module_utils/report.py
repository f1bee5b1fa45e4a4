# Copyright: pi-bootstrap contributors
# MIT OR Apache-2.0
"""Running one pi-bootstrap binary on the host with --json, and reading its report.

Every pi-bootstrap binary keeps one contract: --json prints one report on stdout
(``step``, ``check``, ``items`` with ``status`` and an optional unified ``diff``,
``summary`` with the counts of each status), and the exit code is 0 (done or in sync),
1 (something failed, drifted or, with --check, would change) or 2 (the manifest or
the command line is wrong). ``pi-bootstrap-restore --json`` adds ``steps``: each step's
own report, exit code, seconds and stderr.
"""

from __future__ import annotations

import json
import os

STATUSES = ("ok", "changed", "would_change", "failed", "drift", "skipped")

# The folder `cargo xtask install` and the role put the binaries in.
DEFAULT_BIN_DIR = "~/.local/lib/pi-bootstrap/bin"


def common_argument_spec():
    """The options every module of the collection takes."""
    return dict(
        bin_dir=dict(type="path", default=DEFAULT_BIN_DIR),
        manifest=dict(type="path"),
        env=dict(type="dict", default={}, no_log=True),
        runtime_dir=dict(type="path"),
    )


def run_json(module, program, arguments):
    """Runs ``program ARGUMENTS --json`` from ``bin_dir`` with the given environment.

    Returns (rc, report or None, stderr). The user manager is reached through
    ``XDG_RUNTIME_DIR``: a login through pam_systemd sets it; an SSH session without
    it (``UsePAM no``, ``become`` without a login) gets ``/run/user/UID`` when that
    folder is there, or the ``runtime_dir`` option.
    """
    params = module.params
    binary = os.path.join(params["bin_dir"], program)
    if not os.access(binary, os.X_OK):
        module.fail_json(msg=f"{binary} is not installed (the role pi_bootstrap.host.pi_bootstrap puts the kit there)")
    argv = [binary, *arguments, "--json"]
    if params.get("manifest"):
        argv += ["--manifest", params["manifest"]]
    env = {str(name): str(value) for name, value in params["env"].items()}
    env["NO_COLOR"] = "1"
    runtime_dir = params.get("runtime_dir") or os.environ.get("XDG_RUNTIME_DIR")
    if not runtime_dir and os.path.isdir(f"/run/user/{os.geteuid()}"):
        runtime_dir = f"/run/user/{os.geteuid()}"
    if runtime_dir:
        env["XDG_RUNTIME_DIR"] = runtime_dir
    rc, stdout, stderr = module.run_command(argv, environ_update=env, check_rc=False)
    try:
        report = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        report = None
    return rc, report, stderr


def reports_of(report):
    """The step reports inside a report: itself, or each step's of a restore chain."""
    if "steps" in report:
        return [step["report"] for step in report["steps"] if isinstance(step.get("report"), dict)]
    return [report]


def summary_of(report):
    """The counts of every status, over all the steps a report holds.

    A chain's own items (``step:NAME``) count only when they failed: a step that
    failed without a report (killed by a signal) still makes the chain failed.
    """
    total = dict.fromkeys(STATUSES, 0)
    for step in reports_of(report):
        for status in STATUSES:
            total[status] += int(step.get("summary", {}).get(status, 0))
    if "steps" in report:
        total["failed"] = max(total["failed"], int(report.get("summary", {}).get("failed", 0)))
    return total


def items_of(report):
    """Every item of every step a report holds, with its step's name."""
    for step in reports_of(report):
        for item in step.get("items", []):
            yield step.get("step", ""), item


def diffs_of(report, statuses):
    """The items' unified diffs as Ansible diffs (``prepared``), for ``--diff``."""
    return [
        {"prepared": f"{step} {item['id']}: {item.get('detail', '')}\n{item['diff']}"}
        for step, item in items_of(report)
        if item.get("diff") and item.get("status") in statuses
    ]


def not_ok(report, statuses):
    """``STEP ID: DETAIL`` for each item with one of the statuses."""
    return [
        f"{step} {item['id']}: {item.get('detail', '')}"
        for step, item in items_of(report)
        if item.get("status") in statuses
    ]
