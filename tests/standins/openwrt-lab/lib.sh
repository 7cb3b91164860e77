# TEST STAND-IN helper, sourced by the lab router's init.d/ifup stand-ins (BusyBox ash).
# /etc/lab/env (written by tests/lab/router.py) says where the host's Python and these
# stand-ins are mounted inside the router: LAB_PYTHON, LAB_STANDINS.
. /etc/lab/env
STANDIN_EVENT_LOG=/tmp/standin-events.log

# lab_py <script.py> <args...>: run a stand-in helper with the host's Python (stdlib only)
lab_py() {
	script=$1
	shift
	"$LAB_PYTHON" -S -s -E -B "$LAB_STANDINS/$script" "$@"
}
