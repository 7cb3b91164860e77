"""The lab (DESIGN.md section 6, layer 5): the home network on one Linux machine. TEST ONLY.

    python3 -m tests.lab up                      # needs root
    pyinfra inventories/lab.py deploys/all.py    # exactly as at home
    python3 -m tests.lab down

Modules:

``topology``
    network namespaces ``<prefix><role>`` (inet, router, lan, server, client1, client2, phone)
    and the veth cables between them; idempotent ``up()``/``down()``, removable after a crash.
``router``
    :class:`~tests.lab.router.LabRouter`: the harness's fake OpenWrt router (BusyBox ash chroot,
    real OpenSSH, counted execs) in the lab's router namespace, with the stand-ins of
    ``tests/standins/openwrt-lab`` whose reloads are real (wireguard-go + wg, nft, ip).
``macs``
    :class:`~tests.lab.macs.MacHost`: the server and the clients as fake Macs (the harness's
    :class:`~tests.harness.fake_mac.FakeMac`) in their namespaces.
``hosts``
    :class:`~tests.lab.hosts.NamespaceHost` (``up --plain``): a real OpenSSH server per managed
    host (server, client1, client2) whose commands run as root in that host's namespace.
``lab``
    :class:`~tests.lab.lab.Lab` (everything, in-process) and :class:`~tests.lab.lab.LabState`
    (a running lab seen through ``<lab dir>/state.json``: counts, router commands, config);
    the lab directory owns its namespace prefix (``default_prefix``, ``<lab dir>/prefix``).
``tunnels``, ``probes``, ``agent``
    the remote peers' WireGuard tunnels, and packet probes paired with fw4 model flows.
"""
