#!/usr/bin/env bash
# Build the stamp-suite .deb and .rpm (scripts/package.sh) and check them;
# exits non-zero on any mismatch. .ci/run calls it after the tests.
#
#  1. .deb contents (dpkg-deb -c): the three binaries, the unit, the config
#     in /etc/stamp/, man pages, the MIB; modes and root ownership; control
#     fields, conffiles, and a postinst that creates the `stamp` user.
#  2. The .deb installed into a throw-away root with the real dpkg:
#     `dpkg --root=R --unpack` (the package has no preinst, so no script runs
#     here; dependencies are not in R's empty database, hence
#     --force-depends). Checks dpkg's file list and status, that the files
#     are the built ones, and runs the installed reflector on the installed
#     config.
#  3. The package's own postinst (extracted with dpkg-deb -e) run as
#     `postinst configure`, twice (install, then upgrade), with /bin/sh in a
#     chroot whose /usr is the host's, bind-mounted read-only in a private
#     mount namespace, and whose /etc is a throw-away copy of the host's
#     passwd/group files: the `stamp` user and group must appear there (a
#     system account, no home, no login shell) and the host's own /etc must
#     not change. dpkg itself does not run this step (it would install the
#     files into that read-only /usr); the script and the tools it calls
#     (adduser/useradd) are the real ones.
#  4. systemd-analyze verify on the unit as installed in the throw-away root
#     (skipped, and said so, where systemd-analyze is missing), plus the
#     offline `systemd-analyze security` exposure score, for information.
#  5. .rpm: rpm -qlp lists the same files (the unit under /usr/lib), the
#     config is %config(noreplace), the %pre script creates the user, and the
#     binaries extracted with rpm2cpio are the built ones.
#
# PACKAGE_CHECK_NO_BUILD=1 checks the packages already built.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in
/*) ;;
*) target_dir="$PWD/$target_dir" ;;
esac

if [ "${PACKAGE_CHECK_NO_BUILD:-}" != 1 ]; then
    ./scripts/package.sh
fi

deb=$(ls -t "$target_dir"/debian/stamp-suite_*.deb 2>/dev/null | head -n1 || true)
rpm=$(ls -t "$target_dir"/generate-rpm/stamp-suite-*.rpm 2>/dev/null | head -n1 || true)
[ -n "$deb" ] || { echo "package-check: no .deb under $target_dir/debian" >&2; exit 1; }
[ -n "$rpm" ] || { echo "package-check: no .rpm under $target_dir/generate-rpm" >&2; exit 1; }

failures=0
pass() { echo "ok    $*"; }
fail() {
    echo "FAIL  $*"
    failures=$((failures + 1))
}
skip() { echo "skip  $*"; }
check() { # description, command...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}

work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

echo "==> $(basename "$deb") ($(stat -c %s "$deb") octets), $(basename "$rpm") ($(stat -c %s "$rpm") octets)"

# ---------------------------------------------------------------- 1. .deb
echo "==> .deb contents"
dpkg-deb -c "$deb" >"$work/deb.list"
# path (without ./) and the mode string dpkg-deb -c shows
deb_files=(
    "usr/bin/stamp-suite -rwxr-xr-x"
    "usr/bin/stamp-reflector -rwxr-xr-x"
    "usr/bin/stamp-sender -rwxr-xr-x"
    "lib/systemd/system/stamp-reflector.service -rw-r--r--"
    "etc/stamp/stamp.toml -rw-r--r--"
    "usr/share/snmp/mibs/STAMP-SUITE-MIB.txt -rw-r--r--"
    "usr/share/doc/stamp-suite/usage.md -rw-r--r--"
    "usr/share/doc/stamp-suite/security.md -rw-r--r--"
    "usr/share/bash-completion/completions/stamp-suite -rw-r--r--"
)
for entry in "${deb_files[@]}"; do
    path=${entry% *}
    mode=${entry#* }
    check "deb has /$path ($mode)" \
        awk -v p="./$path" -v m="$mode" '$6 == p && $1 == m { f = 1 } END { exit !f }' "$work/deb.list"
done
for page in stamp-suite stamp-reflector stamp-sender; do
    check "deb has man page $page(1)" grep -Eq "\./usr/share/man/man1/$page\.1(\.gz)?$" "$work/deb.list"
done
check "deb: every entry owned by root (uid and gid 0)" \
    awk '$2 != "root/root" && $2 != "0/0" { bad = 1 } END { exit bad }' "$work/deb.list"
check "deb: Package is stamp-suite" test "$(dpkg-deb -f "$deb" Package)" = stamp-suite
check "deb: Architecture is $(dpkg --print-architecture)" \
    test "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)"
check "deb: Depends names libc6" grep -q libc6 <<<"$(dpkg-deb -f "$deb" Depends)"
check "deb: /etc/stamp/stamp.toml is a conffile" \
    grep -qx /etc/stamp/stamp.toml <<<"$(dpkg-deb -I "$deb" conffiles)"
check "deb: postinst creates the stamp user" \
    grep -q 'adduser --system' <<<"$(dpkg-deb -I "$deb" postinst)"

# ------------------------------------------------- 2. dpkg --root unpack
echo "==> dpkg --root: unpack into a throw-away root"
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
if dpkg --root="$root" --force-depends --unpack "$deb" >"$work/dpkg.log" 2>&1; then
    pass "dpkg --root --unpack"
else
    fail "dpkg --root --unpack"
    sed 's/^/      /' "$work/dpkg.log"
fi
check "dpkg: status is 'install ok unpacked'" \
    grep -qx 'Status: install ok unpacked' <<<"$(dpkg --root="$root" -s stamp-suite 2>/dev/null)"
dpkg --root="$root" -L stamp-suite >"$work/dpkg-L" 2>/dev/null || true
for f in /usr/bin/stamp-suite /usr/bin/stamp-reflector /usr/bin/stamp-sender \
    /lib/systemd/system/stamp-reflector.service /etc/stamp/stamp.toml \
    /usr/share/snmp/mibs/STAMP-SUITE-MIB.txt; do
    check "dpkg -L lists $f" grep -qx "$f" "$work/dpkg-L"
done
for f in /usr/bin/stamp-suite /usr/bin/stamp-reflector /usr/bin/stamp-sender \
    /lib/systemd/system/stamp-reflector.service /usr/share/snmp/mibs/STAMP-SUITE-MIB.txt; do
    check "$f is in the root" test -f "$root$f"
done
# A conffile waits as .dpkg-new until configure (dpkg's conffile handling).
conf="$root/etc/stamp/stamp.toml.dpkg-new"
check "/etc/stamp/stamp.toml unpacked as a conffile (.dpkg-new)" test -f "$conf"
for b in stamp-suite stamp-reflector stamp-sender; do
    check "installed $b is the built one" cmp -s "$root/usr/bin/$b" "$target_dir/release/$b"
    check "installed $b is executable" test -x "$root/usr/bin/$b"
done
check "installed unit is packaging/stamp-reflector.service" \
    cmp -s "$root/lib/systemd/system/stamp-reflector.service" packaging/stamp-reflector.service
check "installed config is packaging/stamp.toml" cmp -s "$conf" packaging/stamp.toml
check "installed MIB is doc/STAMP-SUITE-MIB.txt" \
    cmp -s "$root/usr/share/snmp/mibs/STAMP-SUITE-MIB.txt" doc/STAMP-SUITE-MIB.txt
# The installed reflector starts on the installed config (port 0 instead
# of 862, on loopback; stopped with SIGINT after a second).
timeout -s INT 2 "$root/usr/bin/stamp-reflector" --config "$conf" \
    --local-addr 127.0.0.1 --local-port 0 >"$work/refl.out" 2>"$work/refl.err" || true
check "installed reflector runs on the installed config" grep -q 'stamp reflector listening on 127.0.0.1:' "$work/refl.err"
check "installed reflector prints its summary on SIGINT" grep -q 'Packets received: 0' "$work/refl.out"

# ------------------------------------------ 3. postinst: the stamp user
echo "==> postinst configure in a chroot with a throw-away /etc"
if ! command -v unshare >/dev/null 2>&1 || ! unshare -m true 2>/dev/null; then
    fail "postinst check needs unshare -m (root, util-linux)"
else
    sys="$work/sys"
    mkdir -p "$sys/usr" "$sys/etc" "$sys/tmp" "$sys/run" "$sys/proc" "$sys/dev" "$sys/var/lib" "$sys/var/log"
    for d in bin sbin lib lib64; do
        if [ -L "/$d" ]; then
            ln -s "$(readlink "/$d")" "$sys/$d"
        elif [ -d "/$d" ]; then
            mkdir -p "$sys/$d"
        fi
    done
    # What useradd / adduser (and chfn, through PAM) read, copied.
    for f in passwd group shadow gshadow login.defs nsswitch.conf adduser.conf deluser.conf \
        pam.conf pam.d security default skel; do
        if [ -e "/etc/$f" ]; then cp -a "/etc/$f" "$sys/etc/"; fi
    done
    # Whatever the host has, the postinst must create the account itself.
    for f in passwd group shadow gshadow; do
        if [ -f "$sys/etc/$f" ]; then sed -i '/^stamp:/d' "$sys/etc/$f"; fi
    done
    dpkg-deb -e "$deb" "$sys/DEBIAN"
    host_passwd=$(sha256sum /etc/passwd /etc/group)
    # Non-usr-merged hosts: bind the top-level directories too.
    binds="mount --bind -o ro /usr '$sys/usr'"
    for d in bin sbin lib lib64; do
        if [ -d "/$d" ] && [ ! -L "/$d" ]; then
            binds="$binds && mount --bind -o ro /$d '$sys/$d'"
        fi
    done
    if unshare -m sh -c "$binds && mount -t proc proc '$sys/proc' \
        && chroot '$sys' /bin/sh /DEBIAN/postinst configure \
        && chroot '$sys' /bin/sh /DEBIAN/postinst configure 0.1.0" >"$work/postinst.log" 2>&1; then
        pass "postinst configure ran twice (install, upgrade)"
    else
        fail "postinst configure"
        sed 's/^/      /' "$work/postinst.log"
    fi
    user=$(grep '^stamp:' "$sys/etc/passwd" || true)
    group=$(grep '^stamp:' "$sys/etc/group" || true)
    check "postinst created the stamp user" test -n "$user"
    check "postinst created the stamp group" test -n "$group"
    if [ -n "$user" ] && [ -n "$group" ]; then
        IFS=: read -r _ _ uid gid _ home shell <<<"$user"
        IFS=: read -r _ _ group_gid _ <<<"$group"
        check "stamp is a system account (uid $uid < 1000)" test "$uid" -lt 1000
        check "stamp's primary group is stamp" test "$gid" = "$group_gid"
        check "stamp has no home ($home)" test "$home" = /nonexistent
        check "stamp has no login shell ($shell)" test "$shell" = /usr/sbin/nologin
        check "stamp appears once (second configure is idempotent)" \
            test "$(grep -c '^stamp:' "$sys/etc/passwd")" = 1
    fi
    check "the host's /etc/passwd and /etc/group are untouched" \
        test "$(sha256sum /etc/passwd /etc/group)" = "$host_passwd"
fi

# ------------------------------------------------- 4. systemd-analyze
echo "==> systemd-analyze on the installed unit"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify resolves ExecStart= and the units it depends on inside the
    # root: it finds the installed /usr/bin/stamp-reflector there, and the
    # host's systemd units are copied in as a system with systemd would have
    # them. Documentation=man:stamp-reflector(1) is looked up in the
    # installed man pages (MANPATH), where man(1) is available.
    mkdir -p "$root/usr/lib/systemd"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
    man_opt=--man=yes
    command -v man >/dev/null 2>&1 || man_opt=--man=no
    if MANPATH="$root/usr/share/man" systemd-analyze verify "$man_opt" --root="$root" \
        /lib/systemd/system/stamp-reflector.service >"$work/verify.log" 2>&1 \
        && ! grep -q . "$work/verify.log"; then
        pass "systemd-analyze verify $man_opt (no warning)"
    else
        fail "systemd-analyze verify"
        sed 's/^/      /' "$work/verify.log"
    fi
    if score=$(systemd-analyze security --offline=yes --root="$root" \
        /lib/systemd/system/stamp-reflector.service 2>/dev/null | tail -n1); then
        echo "info  systemd-analyze security: ${score:-no score}"
    fi
else
    skip "systemd-analyze verify: systemd-analyze not installed (Debian package systemd)"
fi

# ------------------------------------------------------------- 5. .rpm
echo "==> .rpm"
if command -v rpm >/dev/null 2>&1; then
    rpm -qlp "$rpm" >"$work/rpm.list" 2>/dev/null
    for f in /usr/bin/stamp-suite /usr/bin/stamp-reflector /usr/bin/stamp-sender \
        /usr/lib/systemd/system/stamp-reflector.service /etc/stamp/stamp.toml \
        /usr/share/snmp/mibs/STAMP-SUITE-MIB.txt /usr/share/man/man1/stamp-suite.1; do
        check "rpm -qlp lists $f" grep -qx "$f" "$work/rpm.list"
    done
    check "rpm: name and arch are stamp-suite $(uname -m)" \
        test "$(rpm -qp --qf '%{NAME} %{ARCH}' "$rpm" 2>/dev/null)" = "stamp-suite $(uname -m)"
    check "rpm: /etc/stamp/stamp.toml is a config file" \
        grep -qx /etc/stamp/stamp.toml <<<"$(rpm -qcp "$rpm" 2>/dev/null)"
    check "rpm: %pre creates the stamp user" grep -q 'useradd --system' <<<"$(rpm -qp --scripts "$rpm" 2>/dev/null)"
    check "rpm: requires shadow-utils" grep -q '^shadow-utils' <<<"$(rpm -qp --requires "$rpm" 2>/dev/null)"
    if command -v rpm2cpio >/dev/null 2>&1 && command -v cpio >/dev/null 2>&1; then
        mkdir -p "$work/rpmroot"
        # Debian's rpm2cpio exits 1 after writing a complete payload; the
        # cpio unpack and the comparisons below are what count.
        rpm2cpio "$rpm" >"$work/payload.cpio" 2>"$work/cpio.log" || true
        if (cd "$work/rpmroot" && cpio -idm <"$work/payload.cpio") >>"$work/cpio.log" 2>&1; then
            pass "rpm2cpio | cpio unpacks the payload"
        else
            fail "rpm2cpio | cpio unpacks the payload"
            sed 's/^/      /' "$work/cpio.log"
        fi
        for b in stamp-suite stamp-reflector stamp-sender; do
            check "rpm's $b is the built one" cmp -s "$work/rpmroot/usr/bin/$b" "$target_dir/release/$b"
        done
    else
        skip "rpm payload comparison: rpm2cpio or cpio not installed"
    fi
else
    fail "rpm not installed (Debian package rpm; .ci/run installs it)"
fi

echo "==> package sizes"
ls -l "$deb" "$rpm" | awk '{ print "      " $5 " octets  " $9 }'
if [ "$failures" -gt 0 ]; then
    echo "package-check: $failures check(s) failed"
    exit 1
fi
echo "package-check: all checks passed"
