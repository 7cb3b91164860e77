"""How pyinfra talks to an OpenWrt router: root over SSH, scp (no SFTP on stock OpenWrt)."""

ssh_user = "root"
ssh_file_transfer_protocol = "scp"
