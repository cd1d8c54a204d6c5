"""``make audit``: pip-audit against a lock file, with a verdict an operator cannot misread.

pip-audit reports "No known vulnerabilities found" even when it could not look a single package
up (the advisory database unreachable, a registry mirror without PyPI's JSON API). This wrapper
says so plainly and fails instead:

* exit 0 — every pinned package was checked, none has a known vulnerability;
* exit 1 — known vulnerabilities (listed, with the fixed versions);
* exit 2 — no verdict: the advisory database could not be reached, or packages could not be
  checked (listed).

Usage: python tools/audit.py requirements/dev.lock [--service pypi|osv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

NETWORK = ("ConnectionError", "Max retries exceeded", "Failed to resolve", "timed out")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("lock", type=Path)
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    args = parser.parse_args()
    command = [
        sys.executable, "-m", "pip_audit", "-r", str(args.lock), "--no-deps", "--disable-pip",
        "--progress-spinner", "off", "--format", "json", "-s", args.service,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if any(marker in done.stderr for marker in NETWORK):
        reason = next(line for line in done.stderr.splitlines()[::-1] if line.strip())
        return _no_verdict(f"the advisory database ({args.service}) could not be reached: {reason}")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return _no_verdict(
            f"pip-audit failed (exit {done.returncode}): {done.stderr.strip()[-400:]}"
        )
    packages = report.get("dependencies", [])
    skipped = [p for p in packages if p.get("skip_reason")]
    vulnerable = [p for p in packages if p.get("vulns")]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            print(
                f"VULNERABLE {package['name']}=={package['version']}: {vuln['id']} (fixed: {fixed})"
            )
    if vulnerable:
        return 1
    if skipped:
        names = ", ".join(p["name"] for p in skipped[:8])
        more = f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""
        return _no_verdict(
            f"{len(skipped)} of {len(packages)} packages could not be checked ({names}{more}): "
            f"the advisory database ({args.service}) is unreachable or does not know them"
        )
    print(f"make audit: {len(packages)} pinned packages checked, no known vulnerabilities")
    return 0


def _no_verdict(why: str) -> int:
    print(f"make audit: NO VERDICT — {why}. Nothing is known to be safe; run it again where the "
          "advisory database is reachable.")  # fmt: skip
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
