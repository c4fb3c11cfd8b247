dnl relay-milter for Sendmail: add these lines to sendmail.mc, after OSTYPE and
dnl FEATURE lines and before the MAILER lines, then rebuild sendmail.cf
dnl (Debian: `sendmailconfig`, or `make -C /etc/mail`) and restart Sendmail.
dnl
dnl The socket must match [milter] socket in relay-milter.toml. For a unix
dnl socket write S=local:/run/relay-milter/relay-milter.sock, and give the user
dnl Sendmail's daemon runs as access to it ([milter] socket_group).
dnl
dnl F=T: when relay-milter cannot be reached, Sendmail answers with a temporary
dnl failure, so the sending side retries and no mail is lost (without an F=
dnl flag Sendmail would carry on as if there were no filter, unguarded).
dnl T= timeouts: C connect, S sending to the filter, R reading its reply,
dnl E the whole end of message. relay-milter answers from memory, in well
dnl under a second; these leave room for a loaded host.
INPUT_MAIL_FILTER(`relay-milter', `S=inet:10025@127.0.0.1, F=T, T=C:10s;S:30s;R:30s;E:5m')dnl
dnl
dnl The macros relay-milter reads. It asks for them when it connects
dnl (SMFIF_SETSYMLIST); these settings name them too, for a Sendmail that
dnl does not honour the request, and they keep Sendmail's own defaults.
dnl   {client_addr}          the connecting client (else the connect address is used)
dnl   v                      Sendmail's version: tells relay-milter that
dnl                          {rcpt_addr} comes after the virtusertable
dnl   {auth_authen}          the SASL login: authenticated clients may relay
dnl   {rcpt_mailer}          Sendmail's mailer for the recipient: local, prog
dnl                          and the *file*/*include* pseudo-mailers deliver
dnl                          here; esmtp, smtp, relay and others do not
dnl   {rcpt_addr}            the address the mailer gets (for the local mailer
dnl                          just the user name)
dnl   i                      the queue id, for the log
dnl Each list keeps Sendmail's own defaults ({msg_id} at end of message among
dnl them), since they are the lists every milter of this Sendmail gets.
define(`confMILTER_MACROS_CONNECT', `j, _, {daemon_name}, {if_name}, {if_addr}, {client_addr}, v')dnl
define(`confMILTER_MACROS_ENVFROM', `i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, {mail_mailer}, {mail_host}, {mail_addr}')dnl
define(`confMILTER_MACROS_ENVRCPT', `i, {rcpt_mailer}, {rcpt_host}, {rcpt_addr}')dnl
define(`confMILTER_MACROS_EOM', `{msg_id}, i')dnl
