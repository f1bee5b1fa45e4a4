#!/usr/bin/python
# Copyright: pi-bootstrap contributors
# MIT OR Apache-2.0
"""Runs pi-config-audit on the host and returns its drift; never changes anything."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit
short_description: Audit a pi-bootstrap host against its manifest
description:
  - Runs C(pi-config-audit --json) from O(bin_dir), which observes every step read-only
    and reports what is on the host but not declared. It changes nothing, so the task is never
    changed, in check mode or not.
  - The drift items (and the items that could not be observed) are in RV(drift); the task
    fails on them only with O(fail_on_drift). It fails when the audit cannot run or the
    manifest is wrong (exit 2).
  - With C(--diff), the unified diffs of the drift items are shown.
version_added: "1.0.0"
options:
  fail_on_drift:
    description: Fail the task when the audit finds drift.
    type: bool
    default: false
  deep:
    description: Ask the backup repository instead of the local record, and run every prerequisite's check command (C(--deep)).
    type: bool
    default: false
  manifest:
    description: The host's manifest.
    type: path
  env:
    description: Variables for the audit's environment, secrets included. Never logged, never shown.
    type: dict
    default: {}
extends_documentation_fragment:
  - pi_bootstrap.host.host
"""

EXAMPLES = r"""
- name: Audit the host, failing on drift
  pi_bootstrap.host.audit:
    manifest: ~/.config/pi-bootstrap/pi-bootstrap.yaml
    fail_on_drift: true
"""

RETURN = r"""
report:
  description: The audit's JSON report, as it printed it.
  returned: when the audit printed one
  type: dict
summary:
  description: The counts of each status.
  returned: when the audit printed a report
  type: dict
drift:
  description: One line per item that drifted or could not be observed, its id then its detail.
  returned: when the audit printed a report
  type: list
  elements: str
exit_code:
  description: The audit's exit code (0 clean, 1 drift, 2 manifest wrong).
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pi_bootstrap.host.plugins.module_utils.report import (
    common_argument_spec,
    diffs_of,
    not_ok,
    run_json,
    summary_of,
)

DRIFT = ("drift", "failed")


def main():
    spec = common_argument_spec()
    spec.update(
        fail_on_drift=dict(type="bool", default=False),
        deep=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    arguments = ["--deep"] if module.params["deep"] else []

    rc, report, stderr = run_json(module, "pi-config-audit", arguments)
    if rc == 2:
        module.fail_json(msg=f"the manifest or the command line is wrong: {stderr.strip()}", exit_code=rc, stderr=stderr, report=report)
    if report is None:
        module.fail_json(msg=f"pi-config-audit printed no report (exit {rc}): {stderr.strip()}", exit_code=rc, stderr=stderr)

    drift = not_ok(report, DRIFT)
    result = dict(changed=False, report=report, summary=summary_of(report), drift=drift, exit_code=rc, stderr=stderr)
    if module._diff:
        result["diff"] = diffs_of(report, DRIFT)
    if module.params["fail_on_drift"] and (drift or rc != 0):
        module.fail_json(msg="drift: " + "; ".join(drift), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
