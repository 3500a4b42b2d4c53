"""Reports of test runs: TAP/KTAP parsing (KUnit, the kernel's selftests), JUnit XML and a
terminal summary."""

from harness.report.junit import write_junit, xml_text
from harness.report.ktap import Case, ScriptResult, leaves, parse_ktap, parse_selftest
from harness.report.summary import overall_status, summary_line, summary_table

__all__ = [
    "Case",
    "ScriptResult",
    "leaves",
    "overall_status",
    "parse_ktap",
    "parse_selftest",
    "summary_line",
    "summary_table",
    "write_junit",
    "xml_text",
]
