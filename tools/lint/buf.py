"""buf's findings as a person reads them: `FILE:LINE:COLUMN: MESSAGE (RULE)`.

buf's text output leaves out the rule, and the rule is what a buf.yaml exception names and what
a breaking-change failure is about; its JSON output (`--error-format=json`, one finding a line)
has it. `buf lint` in //tools/lint and `buf breaking` in //tools/lint:proto_breaking both print
findings this way. Anything that is not a finding (a compile error) passes through unchanged.
"""

from __future__ import annotations

import json

# The options that make buf print one JSON finding a line, for readable().
JSON = ["--error-format=json"]


def readable(output: str) -> str:
    """buf's output with each JSON finding rewritten as one line that names its rule."""
    lines = []
    for line in output.splitlines():
        try:
            finding = json.loads(line)
        except json.JSONDecodeError:
            finding = None
        if not isinstance(finding, dict) or "type" not in finding:
            lines.append(line)
            continue
        where = f"{finding.get('path', '?')}:{finding.get('start_line', 0)}:"
        where += f"{finding.get('start_column', 0)}"
        lines.append(f"{where}: {finding.get('message', '')} ({finding['type']})")
    return "\n".join(lines)
