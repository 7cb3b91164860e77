# TEST STAND-IN helper (not an OpenWrt file): fault injection for the init.d/ifup stand-ins.
# Sourced by rc.common and ifup, and on the fake Macs (tests/harness/fake_mac.py copies it to
# /opt/macos-standins/faults.sh) by the plutil and wg-quick stand-ins. Tests write lines
# "<point> <action> [arg]" to /tmp/standin-faults (the same file the uci stand-in reads), e.g.
#   firewall-reload fail 1      the first "firewall reload" fails (exit 1), later ones work
#   network-reload fail         every "network reload" fails
#   ifup-wg0 delay 3            "ifup wg0" sleeps 3 s first
# Points: "<service>-<action>" (rc.common) and "ifup-<iface>" (ifup). Counters live in
# /tmp/standin-faults.<point>.count. No file, no fault.
STANDIN_FAULTS=/tmp/standin-faults

standin_fault() {
	[ -f "$STANDIN_FAULTS" ] || return 0
	while read -r _point _action _arg; do
		[ "$_point" = "$1" ] || continue
		case "$_action" in
			delay) sleep "$_arg" ;;
			fail)
				_n=$(cat "$STANDIN_FAULTS.$1.count" 2>/dev/null || echo 0)
				_n=$((_n + 1))
				echo "$_n" > "$STANDIN_FAULTS.$1.count"
				if [ -z "$_arg" ] || [ "$_n" -le "$_arg" ]; then
					echo "stand-in fault injected: $1 fails" >&2
					return 1
				fi
				;;
		esac
	done < "$STANDIN_FAULTS"
	return 0
}
