#!/usr/bin/python
# Copyright: pi-bootstrap contributors
# MIT OR Apache-2.0
"""Runs one pi-bootstrap step binary (or the restore chain) and maps its JSON report."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: step
short_description: Run one pi-bootstrap step, or the whole restore chain, on the host
description:
  - Runs a pi-bootstrap binary from O(bin_dir) with C(--json), and C(--check) when the
    play runs in check mode, and maps its report to the result.
  - RV(ignore:changed) is true when the report counts changed items (would-change items in
    check mode); the task fails when an item failed or the binary exits 2 (the manifest or
    the command line is wrong).
  - With C(--diff), each item's unified diff is an Ansible diff.
  - C(pi-bootstrap-restore) runs every step in the restore order under one run lock and
    stops at the first failure; its report holds each step's report, and they all count.
version_added: "1.0.0"
options:
  step:
    description:
      - The binary, such as V(pi-bootstrap-restore), V(bootstrap-services) or V(bootstrap-data).
    type: str
    required: true
  arguments:
    description:
      - Arguments before the shared flags, such as V([restore]) for V(bootstrap-data),
        or V([--resume]) for the chain.
    type: list
    elements: str
    default: []
  only:
    description: Only these items, by id (C(--only)); not for the chain.
    type: list
    elements: str
    default: []
  manifest:
    description:
      - The host's manifest. Without it, E(PI_BOOTSTRAP_MANIFEST), then the nearest
        C(pi-bootstrap.yaml) above the working folder.
    type: path
  env:
    description:
      - Variables for the step's environment, secrets included (env file values, C(${NAME})
        of the manifest). Never logged, never shown.
    type: dict
    default: {}
extends_documentation_fragment:
  - pi_bootstrap.host.host
"""

EXAMPLES = r"""
- name: Restore the host in the documented order
  pi_bootstrap.host.step:
    step: pi-bootstrap-restore
    manifest: ~/.config/pi-bootstrap/pi-bootstrap.yaml
    env:
      DEMO_TOKEN: "{{ vault_demo_token }}"

- name: Back up the host's data
  pi_bootstrap.host.step:
    step: bootstrap-data
    arguments: [backup]
    manifest: ~/.config/pi-bootstrap/pi-bootstrap.yaml
"""

RETURN = r"""
report:
  description: The binary's JSON report, as it printed it.
  returned: when the binary printed one
  type: dict
summary:
  description: The counts of each status (C(ok), C(changed), C(would_change), C(failed), C(drift), C(skipped)) over every step.
  returned: when the binary printed a report
  type: dict
exit_code:
  description: The binary's exit code (0 done, 1 failed or would change, 2 manifest or command line wrong).
  returned: always
  type: int
failed_items:
  description: One line per failed item, its step, its id and its detail.
  returned: when the binary printed a report
  type: list
  elements: str
stderr:
  description: What the binary wrote on stderr.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pi_bootstrap.host.plugins.module_utils.report import (
    common_argument_spec,
    diffs_of,
    not_ok,
    run_json,
    summary_of,
)


def main():
    spec = common_argument_spec()
    spec.update(
        step=dict(type="str", required=True),
        arguments=dict(type="list", elements="str", default=[]),
        only=dict(type="list", elements="str", default=[]),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    check = module.check_mode
    arguments = list(module.params["arguments"])
    for item in module.params["only"]:
        arguments += ["--only", item]
    if check:
        arguments.append("--check")

    rc, report, stderr = run_json(module, module.params["step"], arguments)
    if rc == 2:
        module.fail_json(msg=f"the manifest or the command line is wrong: {stderr.strip()}", exit_code=rc, stderr=stderr, report=report)
    if report is None:
        module.fail_json(msg=f"{module.params['step']} printed no report (exit {rc}): {stderr.strip()}", exit_code=rc, stderr=stderr)

    summary = summary_of(report)
    failed_items = not_ok(report, ("failed",))
    result = dict(
        changed=summary["would_change" if check else "changed"] > 0,
        report=report,
        summary=summary,
        exit_code=rc,
        failed_items=failed_items,
        stderr=stderr,
    )
    if module._diff:
        result["diff"] = diffs_of(report, ("would_change",) if check else ("changed", "failed"))
    # Exit 1 without a failed item is a would-change under --check, and a failure otherwise.
    if failed_items or (rc != 0 and not (check and rc == 1)):
        module.fail_json(msg="; ".join(failed_items) or f"exit {rc}: {stderr.strip()}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
