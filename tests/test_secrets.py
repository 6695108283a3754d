"""No secret in the repository: detect-secrets over every file git tracks (or would add) finds nothing."""

from __future__ import annotations

import secrets
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

from detect_secrets.core import scan
from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.settings import default_settings

from testing.prerequisites import unavailable

REPO = Path(__file__).resolve().parents[1]
#: Asks the provider whether a found key is live (a request to AWS, Slack, ...): never from a test.
VERIFICATION_FILTER = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"


@dataclass(frozen=True, order=True)
class Finding:
    """One potential secret: where it is and which detector flagged it."""

    path: str
    line: int
    detector: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.detector}"


def repository_files(root: Path) -> list[str]:
    """The files git tracks in `root`, and untracked ones it would add: never ignored ones (.venv, .cache)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def _source_line(path: Path, secret: PotentialSecret) -> int:
    """The line of `path` holding the flagged value. The scanner numbers the values it parses out of a YAML
    file, which drifts from the file's lines where one line holds several values (a flow mapping)."""
    lines = path.read_text(errors="replace").splitlines()
    number, value = secret.line_number, secret.secret_value or ""
    if value and not (0 < number <= len(lines) and value in lines[number - 1]):
        number = next((n for n, text in enumerate(lines, start=1) if value in text), number)
    return number


def find_secrets(root: Path) -> list[Finding]:
    """Scan every file of `repository_files(root)` with detect-secrets' default detectors and filters.

    A line carrying `pragma: allowlist secret` (or after `pragma: allowlist nextline secret`) is skipped.
    """
    found = set()
    with default_settings() as settings:
        settings.disable_filters(VERIFICATION_FILTER)
        for name in repository_files(root):
            path = root / name
            found.update(Finding(name, _source_line(path, s), s.type) for s in scan.scan_file(str(path)))
    return sorted(found)


def test_no_file_of_the_repository_holds_a_secret() -> None:
    if not shutil.which("git") or not (REPO / ".git").exists():
        unavailable(f"the secret scan needs git and a git checkout; {REPO} is not one or git is missing")
    files = repository_files(REPO)
    assert "pyproject.toml" in files and not any(f.startswith((".venv/", ".cache/")) for f in files)
    findings = find_secrets(REPO)
    assert not findings, (
        "potential secrets (remove real ones; mark a false positive with `# pragma: allowlist secret`):\n"
        + "\n".join(map(str, findings))
    )


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def test_the_scan_reports_planted_keys_by_file_line_and_detector(tmp_path: Path) -> None:
    if not shutil.which("git"):
        unavailable("the secret scan needs git (apt-get install -y git)")
    # Built at run time, so that this file holds no key for the scan above to find.
    access_key = "AKIA" + _random(string.ascii_uppercase + "234567", 16)
    # A letter first: the keyword detector skips a quoted value starting with "/" or "+" (~4 % of draws).
    secret_key = _random(string.ascii_letters, 1) + _random(string.ascii_letters + string.digits + "/+", 39)
    private_key = "\n".join(
        ["-----BEGIN " + "RSA PRIVATE KEY-----"]
        + [_random(string.ascii_letters + string.digits + "/+", 64) for _ in range(4)]
        + ["-----END " + "RSA PRIVATE KEY-----", ""]
    )
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.py").write_text(
        '"""Settings."""\n'
        f'aws_access_key_id = "{access_key}"\n'
        f'aws_secret_access_key = "{secret_key}"\n'
        f'documented_key = "{access_key}"  # pragma: allowlist secret\n'
    )
    (tmp_path / "id_rsa").write_text(private_key)
    (tmp_path / ".gitignore").write_text(".env\n")
    (tmp_path / ".env").write_text(f"AWS_ACCESS_KEY_ID={access_key}\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "config"], check=True)  # tracked; id_rsa untracked

    findings = find_secrets(tmp_path)

    assert Finding("config/settings.py", 2, "AWS Access Key") in findings
    assert Finding("config/settings.py", 3, "Secret Keyword") in findings
    assert Finding("id_rsa", 1, "Private Key") in findings
    assert {f.path for f in findings} == {"config/settings.py", "id_rsa"}, "the ignored .env is not scanned"
    assert 4 not in {f.line for f in findings if f.path == "config/settings.py"}, "the allowlisted line"
    assert str(Finding("id_rsa", 1, "Private Key")) == "id_rsa:1: Private Key"
