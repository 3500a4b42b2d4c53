"""Write ScriptResults as JUnit XML: a <testsuite> per script, a <testcase> per leaf case.

A KUnit suite's cases are named "suite.case". An expected failure passes with a note in its
<system-out>; a flaky script's cases carry a note and its <testsuite> a "flaky" property.
A case that failed in an attempt other than the one reported carries, as Maven Surefire
writes reruns (and CI viewers read them), a <flakyFailure> per such attempt when the script
passed in the end, a <rerunFailure> when it failed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.ktap import Case, ScriptResult, leaves

ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
NOT_IN_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Text that XML 1.0 can carry: no ANSI escape sequences, no control characters."""
    return NOT_IN_XML.sub("", ANSI_ESCAPE.sub("", text))


def attachment_lines(files) -> str:
    """The JUnit attachment convention (Jenkins, GitLab): one [[ATTACHMENT|path]] a file."""
    return "".join(f"[[ATTACHMENT|{path}]]\n" for path in files)


def write_junit(path: Path, results: list[ScriptResult], suite_prefix: str = "selftests") -> None:
    """Write results to path (its directory is created) as one <testsuites> document."""
    suites = [_testsuite(result, suite_prefix) for result in results]
    root = ET.Element("testsuites", _counts(suite_prefix, suites))
    root.extend(suites)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _counts(name: str, suites: list[ET.Element]) -> dict[str, str]:
    def total(key: str) -> int:
        return sum(int(suite.get(key, "0")) for suite in suites)
    time = sum(float(suite.get("time", "0")) for suite in suites)
    return {"name": name, "tests": str(total("tests")), "failures": str(total("failures")),
            "skipped": str(total("skipped")), "errors": "0", "time": f"{time:.3f}"}


def _testsuite(result: ScriptResult, prefix: str) -> ET.Element:
    name = xml_text(f"{prefix}.{result.name}")
    cases = leaves(result.cases)
    suite = ET.Element("testsuite", {
        "name": name, "tests": str(len(cases)), "failures": str(result.failed),
        "skipped": str(result.skipped), "errors": "0", "time": f"{result.duration_s:.3f}"})
    if result.flaky:
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="flaky", value="true")
    width = max([2, *(len(str(case.number)) for _, case in cases if case.number is not None)])
    for qualified, case in cases:
        suite.append(_testcase(name, qualified, _case_name(qualified, case, width), case, result))
    if result.note:
        ET.SubElement(suite, "system-err").text = xml_text(result.note)
    return suite


def _case_name(qualified: str, case: Case, width: int) -> str:
    """ "07 - diag: ....chk last_data_sent", or the name alone without a number."""
    return qualified if case.number is None else f"{case.number:0{width}d} - {qualified}"


def _other_attempts(qualified: str, result: ScriptResult) -> list[ET.Element]:
    """<flakyFailure>/<rerunFailure> for each other attempt in which this case failed."""
    tag = "flakyFailure" if result.flaky else "rerunFailure"
    elements = []
    for attempt in result.failed_attempts:
        for case in (c for q, c in leaves(attempt.cases) if q == qualified and c.status == "fail"):
            element = ET.Element(tag, message=xml_text(case.reason or "failed"), type="failure")
            ET.SubElement(element, "system-out").text = xml_text(case.output)
            elements.append(element)
    return elements


def _testcase(classname: str, qualified: str, name: str, case: Case,
              result: ScriptResult) -> ET.Element:
    element = ET.Element("testcase", {"classname": classname, "name": xml_text(name),
                                      "time": f"{case.duration_s or 0:.3f}"})
    notes = []
    if case.status == "fail":
        failure = ET.SubElement(element, "failure", message=xml_text(case.reason or "failed"))
        failure.text = xml_text(case.output)
        notes.append(case.output)
    elif case.status == "skip":
        ET.SubElement(element, "skipped", message=xml_text(case.reason))
    elif case.status == "xfail":
        notes += [f"expected failure (XFAIL/TODO), counted as passed: {case.reason}".strip(": "),
                  case.output]
    if result.flaky:
        notes.append(f"flaky: the script failed on its first attempt and passed on a retry"
                     f"{f' ({result.note})' if result.note else ''}")
    element.extend(_other_attempts(qualified, result))
    if result.evidence and (case.status == "fail" or result.flaky):
        notes.append(attachment_lines(result.evidence))
    if any(notes):
        ET.SubElement(element, "system-out").text = xml_text("\n\n".join(n for n in notes if n))
    return element
