#!/bin/sh
# A node container's start: apache2, pure-ftpd and OpenSMTPD, each told which node it is ($NODE),
# then wait on them (the container lives as long as its servers).
set -eu
: "${NODE:?}" "${PASSIVE:?}"

echo "{\"node\": \"$NODE\", \"server\": \"apache2\"}" >/var/www/html/whoami.json
sed -i -e "s#/etc/ssl/certs/ssl-cert-snakeoil.pem#/etc/ssl/certs/node.crt#" \
       -e "s#/etc/ssl/private/ssl-cert-snakeoil.key#/etc/ssl/private/node.key#" \
       /etc/apache2/sites-available/default-ssl.conf
echo "ServerName $NODE" >/etc/apache2/conf-enabled/servername.conf
apache2ctl start

# pure-ftpd greets with a fortune: the node's name, among its other 220- lines
echo "$NODE FTP" >/etc/node-fortune
pure-ftpd -B -e -M -p "$PASSIVE" -F /etc/node-fortune

# OpenSMTPD names the node in its greeting: 220 <node> ESMTP OpenSMTPD
cat >/etc/smtpd.conf <<EOF
listen on 0.0.0.0 port 25 hostname $NODE
action "box" mbox
match from any for any action "box"
EOF
smtpd

exec sleep infinity
