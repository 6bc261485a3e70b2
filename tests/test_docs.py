"""The documentation keeps up with the code.

Every option of src/options.c's tables is in `omikeyfs --help` and in the
OPTIONS section of omikeyfs(1), and every -o option --help shows (libfuse's
included) is in the man page too.  README.md stays short, opens with the
two commands that mount and test, and its audit recipes find what they say
on a real mount.
"""
import calendar
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import BIN, ROOT, iso, make_key, meson_build_dir, run

OPTIONS_C = os.path.join(ROOT, "src", "options.c")
MAN_SCD = os.path.join(ROOT, "man", "omikeyfs.1.scd")
README = os.path.join(ROOT, "README.md")


def table(source, name):
    """The body of the C array `name[] = { ... };` in source."""
    m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\n\};" % re.escape(name), source, re.S)
    assert m, "no table %s in src/options.c" % name
    return m.group(1)


def options_table():
    """{name: kind} of every option src/options.c parses: "value" for a
    NAME=VALUE option (value_options), "word" for one without a value
    (fuse_options: flags, keys and fstab words)."""
    with open(OPTIONS_C) as f:
        source = f.read()
    found = {}
    for name in re.findall(r'\bVALUE\(\s*"([^"]+)"', table(source, "value_options")):
        found[name] = "value"
    for name in re.findall(r'\b(?:FUSE_OPT_KEY|FLAG)\(\s*"([^"]+)"', table(source, "fuse_options")):
        found.setdefault(name, "word")
    return found


def mentions(text, name, kind):
    """Whether text names the option as a user would type it: "ttl=",
    "--port=", a word such as "no_cache" or "--login"."""
    tail = "=" if kind == "value" else r"(?![\w=-])"
    return re.search(r"(?<![\w-])%s%s" % (re.escape(name), tail), text) is not None


def scd_options_section():
    """The OPTIONS section of man/omikeyfs.1.scd, scdoc's escapes undone."""
    with open(MAN_SCD) as f:
        text = f.read()
    m = re.search(r"^# OPTIONS$(.*?)^# ", text, re.S | re.M)
    assert m, "no OPTIONS section in %s" % MAN_SCD
    return m.group(1).replace("\\_", "_").replace("\\*", "*")


def built_man_options_section():
    """The OPTIONS section of the man page meson built from the .scd, its
    roff markup taken out, or None when this build has no man page."""
    build = meson_build_dir()
    path = build and os.path.join(build, "man", "omikeyfs.1")
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read()
    m = re.search(r"^\.SH OPTIONS$(.*?)^\.SH ", text, re.S | re.M)
    assert m, "no OPTIONS section in %s" % path
    return re.sub(r"\\f[BIRP]|\\&", "", m.group(1)).replace("\\-", "-")


@pytest.fixture(scope="module")
def help_text():
    r = run(BIN, "--help")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_options_table_is_read():
    """The parser of the tables finds what they hold, so the tests below
    cannot pass on an empty list."""
    opts = options_table()
    for name, kind in (("key_file", "value"), ("ttl", "value"), ("--port", "value"),
                       ("no_cache", "word"), ("--login", "word"), ("_netdev", "word")):
        assert opts.get(name) == kind, (name, opts)
    assert len(opts) >= 25, opts


def test_every_option_is_in_help(help_text):
    missing = [n for n, kind in options_table().items() if not mentions(help_text, n, kind)]
    assert not missing, "not in omikeyfs --help (src/usage.c): %s" % ", ".join(missing)


@pytest.mark.parametrize("page", ["scd", "built"])
def test_every_option_is_in_the_man_page(page):
    text = scd_options_section() if page == "scd" else built_man_options_section()
    if text is None:
        pytest.skip("this build has no man page (scdoc not found)")
    missing = [n for n, kind in options_table().items() if not mentions(text, n, kind)]
    assert not missing, "not in OPTIONS of omikeyfs(1): %s" % ", ".join(missing)


def test_every_o_option_of_help_is_in_the_man_page(help_text):
    """-o NAME as --help shows it, libfuse's own options too; "-o uid=N,gid=N"
    names two."""
    names = set()
    for group in re.findall(r"(?<![\w-])-o ([\w=,.*-]+)", help_text):
        for part in group.split(","):
            names.add(part.split("=")[0])
    names.discard("")
    assert {"ttl", "gid", "allow_other", "max_threads", "debug"} <= names, names
    text = scd_options_section()
    missing = sorted(n for n in names if not mentions(text, n, "word") and
                     not mentions(text, n, "value"))
    assert not missing, "-o options of --help not in omikeyfs(1): %s" % ", ".join(missing)


def test_readme_is_short_and_opens_with_the_two_commands():
    with open(README) as f:
        lines = f.read().splitlines()
    assert len(lines) <= 250, "README.md has %d lines" % len(lines)
    # The title, then a code block whose first two commands mount and test.
    first = [line for line in lines[:12] if line.strip()]
    assert first[0].startswith("# "), first[:1]
    assert first[1].startswith("```"), first[:2]
    block = []
    for line in first[2:]:
        if line.startswith("```"):
            break
        block.append(line.split("#")[0].strip())
    commands = [c for c in block if c]
    assert commands[:2] == ["bash tests/demo.sh", "bash tests/all.sh"], commands
    for script in ("demo.sh", "all.sh"):
        assert os.path.exists(os.path.join(ROOT, "tests", script)), script
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert "tests/all.sh" in f.read()


def test_readme_points_to_the_reference():
    with open(README) as f:
        text = f.read()
    for ref in ("man omikeyfs", "mount.omikeyfs(8)", "bench/results.md", "HACKING.md"):
        assert ref in text, ref
    # Linked, not copied: the table bench/run writes lives in one place.
    assert "| N | measurement |" not in text


# ---- the README's audit recipes, run on a mount --------------------------------------

def readme_block(heading):
    """The commands of the first code block under heading, each without
    its trailing "  # comment"."""
    with open(README) as f:
        text = f.read()
    m = re.search(r"^%s$.*?^```\n(.*?)^```$" % re.escape(heading), text, re.S | re.M)
    assert m, "no code block under %s in README.md" % heading
    return [re.split(r"\s{2,}# ", line)[0].strip() for line in m.group(1).splitlines()
            if line.strip() and not line.startswith("#")]


def audit_keys(now):
    """Keys whose dates and scopes give each recipe some keys to find and
    some to leave out, relative to now (a Unix time)."""
    def at(seconds_ago):
        return iso(datetime.fromtimestamp(now - seconds_ago, timezone.utc))
    day = 86400
    # Halfway into this month, in local time as date(1) and find use it.
    lt = time.localtime(now)
    month_start = time.mktime((lt.tm_year, lt.tm_mon, 1, 0, 0, 0, 0, 0, -1))
    this_month = (now - month_start) / 2
    return [
        make_key(name="Old writer", created_at=at(200 * day), last_used_at=at(100 * day),
                 scopes=["memories:read", "memories:write"]),
        make_key(name="Legacy Developer API key", created_at=at(300 * day),
                 last_used_at=None, scopes=None),
        make_key(name="New one", created_at=at(this_month), last_used_at=at(this_month / 2),
                 scopes=["conversations:read", "conversations:write"]),
        make_key(name="My Analytics Dashboard", created_at=at(400 * day),
                 last_used_at=at(5 * day), scopes=[]),
        make_key(name="Damaged prefix", key_prefix="omi_dev_legacy", created_at=at(50 * day),
                 last_used_at=at(40 * day), scopes=["goals:read"]),
        make_key(name="Unused reader", created_at=at(20 * day), last_used_at=None,
                 scopes=["memories:read"]),
    ]


def unix(text):
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


def recipe_expectations(now):
    """{recipe: (the file each printed path ends in, or "" for a key
    directory, which keys it must print)}."""
    def month_start():
        lt = time.localtime(now)
        return time.mktime((lt.tm_year, lt.tm_mon, 1, 0, 0, 0, 0, 0, -1))

    def idle_days(k):  # find -mtime counts whole days, a never-used key from creation
        return int((now - unix(k["last_used_at"] or k["created_at"])) // 86400)

    return {
        "find MNT -name last_used_at -mtime +90":
            ("last_used_at", lambda k: idle_days(k) > 90),
        "find MNT -name last_used_at -empty":
            ("last_used_at", lambda k: k["last_used_at"] is None),
        "grep -lx memories:write MNT/*/scopes":
            ("scopes", lambda k: "memories:write" in (k["scopes"] or [])),
        "grep -l ':write$' MNT/*/scopes":
            ("scopes", lambda k: any(s.endswith(":write") for s in k["scopes"] or [])),
        "find MNT -name scopes -empty":
            ("scopes", lambda k: not k["scopes"]),
        "getfattr --absolute-names -n user.omikeyfs.legacy MNT/* | grep -B1 '=\"1\"' "
        "| sed -n 's/^# file: //p'":
            ("", lambda k: k["scopes"] is None),
        "grep -lx omi_dev_legacy MNT/*/key_prefix":
            ("key_prefix", lambda k: k["key_prefix"] == "omi_dev_legacy"),
        'find MNT -mindepth 1 -maxdepth 1 -newermt "$(date +%Y-%m-01)"':
            ("", lambda k: unix(k["created_at"]) > month_start()),
        "grep -l 'Dashboard' MNT/*/name":
            ("name", lambda k: "Dashboard" in k["name"]),
    }


def test_readme_audit_recipes_find_what_they_say(mount):
    now = time.time()
    keys = audit_keys(now)
    m = mount(keys)
    expectations = recipe_expectations(now)
    recipes = readme_block("## Audit recipes")
    assert len(recipes) >= 8, recipes
    for recipe in recipes:
        out = run("bash", "-c", recipe.replace("MNT", m.mnt))
        assert out.returncode in (0, 1) and not out.stderr, (recipe, out.stderr)
        printed = out.stdout.splitlines()
        if recipe == "ls -lt MNT":
            newest_first = sorted(keys, key=lambda k: k["created_at"], reverse=True)
            assert [line.split()[-1] for line in printed[1:]] == [k["id"] for k in newest_first]
            continue
        assert recipe in expectations, "a README recipe this test does not know: " + recipe
        suffix, wanted = expectations[recipe]
        expected = {k["id"] for k in keys if wanted(k)}
        assert expected and expected != {k["id"] for k in keys}, recipe  # a recipe that tells
        tail = "/" + suffix if suffix else ""
        found = set()
        for path in printed:
            assert path.startswith(m.mnt + "/") and path.endswith(tail), (recipe, path)
            found.add(path[len(m.mnt) + 1:len(path) - len(tail)])
        assert found == expected and len(printed) == len(expected), (recipe, printed)
