#!/bin/sh
# A node container's start: lighttpd, vsftpd and Exim, each told which node it is ($NODE),
# then wait on them (the container lives as long as its servers).
set -eu
: "${NODE:?}" "${PASSIVE:?}"

# lighttpd names the node in a header of every answer
mkdir -p /var/www/html && echo "hello from the orders service" >/var/www/html/index.txt
cat >/etc/lighttpd/zoo.conf <<EOF
server.document-root = "/var/www/html"
server.port = 80
server.modules = ("mod_setenv")
server.errorlog = "/var/log/lighttpd-error.log"
mimetype.assign = (".txt" => "text/plain")
setenv.add-response-header = ("X-Backend" => "$NODE")
EOF
lighttpd -f /etc/lighttpd/zoo.conf

# vsftpd, anonymous with uploads, names the node in its banner; no namespaces of its own
# (a container may not make them) and no seccomp sandbox (Docker's filter is enough)
mkdir -p /var/run/vsftpd/empty
cat >/etc/vsftpd.zoo.conf <<EOF
listen=YES
listen_ipv6=NO
background=YES
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_root=/srv/ftp
no_anon_password=YES
ftpd_banner=$NODE FTP (vsftpd)
pasv_min_port=${PASSIVE%:*}
pasv_max_port=${PASSIVE#*:}
isolate=NO
isolate_network=NO
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
EOF
vsftpd /etc/vsftpd.zoo.conf

# Exim names the node in its greeting (220 <node> ESMTP Exim ...), accepts every recipient
# and discards the mail; no DNS or ident lookups (there is no DNS here)
cat >/etc/exim4/exim4.conf <<EOF
primary_hostname = $NODE
helo_lookup_domains =
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = accept
begin routers
discard:
  driver = redirect
  data = :blackhole:
EOF
exim4 -bd

exec sleep infinity
