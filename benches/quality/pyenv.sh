# Sourced by scripts/pesq and scripts/quality: makes sure target/pyenv holds the packages of
# benches/quality/requirements.txt (installing them from PyPI the first time) and sets PY to
# its interpreter.
quality_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$quality_dir/../.." && pwd)"
pyenv="$root/target/pyenv"
stamp="$pyenv/.requirements"
if ! cmp -s "$quality_dir/requirements.txt" "$stamp" 2>/dev/null; then
    "$root/scripts/install-system-deps"
    python3 -m venv "$pyenv"
    "$pyenv/bin/pip" install --quiet --disable-pip-version-check -r "$quality_dir/requirements.txt"
    cp "$quality_dir/requirements.txt" "$stamp"
fi
PY="$pyenv/bin/python"
export PYTHONDONTWRITEBYTECODE=1
