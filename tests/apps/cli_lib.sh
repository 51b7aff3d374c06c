# tests/apps/cli_lib.sh: shared by the command-line tests (source it). Makes $tmp (removed on exit), sets
# fail=0, and defines
#   expect CODE DESCRIPTION -- COMMAND...   run COMMAND (stdout to $tmp/out, stderr to $tmp/err), check its exit code
#   has FILE TEXT                           check FILE contains TEXT
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; tail -n 5 "$tmp/out" "$tmp/err"; fail=1
  else
    echo "ok: $what (exit $got)"
  fi
}
has() { grep -q "$2" "$1" || { echo "FAIL: '$2' not in $1:"; tail -3 "$1"; fail=1; }; }
