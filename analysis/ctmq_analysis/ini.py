"""A reader for the INI files ctmq writes and reads (Boost.Program_options).

Boost's INI dialect: `[section]` headers, `key = value` lines, `#` or `;`
comment lines, options before any header belong to section "". Python's
configparser differs (interpolation, key folding, no header-less options), so
this small reader mirrors Boost instead.
"""

from .errors import RunDirError


def parse_ini(text, path):
    """Returns {section: {key: value}}. A repeated key keeps its last value.

    Raises RunDirError naming `path` and the line for a line that is neither a
    comment, a section header nor `key = value`.
    """
    sections = {"": {}}
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise RunDirError(path, "line %d: malformed section header %r" % (number, raw))
            section = line[1:-1].strip()
            sections.setdefault(section, {})
            continue
        if "=" not in line:
            raise RunDirError(path, "line %d: expected 'key = value', found %r" % (number, raw))
        key, value = line.split("=", 1)
        key = key.strip()
        if not key:
            raise RunDirError(path, "line %d: empty key in %r" % (number, raw))
        sections[section][key] = value.strip()
    return sections


def read_ini(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise RunDirError(path, "cannot read: %s" % e.strerror)
    except UnicodeDecodeError:
        raise RunDirError(path, "not UTF-8 text")
    return parse_ini(text, path)
