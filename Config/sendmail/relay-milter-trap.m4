dnl relay-milter trap mode for Sendmail (README, "Trap mode"): these lines go in
dnl the .mc of a Sendmail of its own for the trap listener (its own sendmail.mc,
dnl sendmail.cf, queue, pid file, and an address or port of its own), never
dnl your MX's: the trap relays for anyone (promiscuous_relay), and only the
dnl trap's relay-milter keeps the mail from leaving. Add them after OSTYPE and
dnl before the MAILER lines, build the .cf with m4, and start that Sendmail
dnl with -C and the .cf.
dnl
dnl Name= is the trap's {daemon_name}: one of [trap] daemon_names in the trap's
dnl relay-milter config. S= is that config's [milter] socket. Port= (and
dnl Addr=, to listen on one address only) is the trap's listener.
dnl
dnl F=T: with relay-milter down Sendmail refuses the trap's mail for now, so
dnl the trap never relays. Never drop it.
FEATURE(`promiscuous_relay')dnl
FEATURE(`no_default_msa')dnl
DAEMON_OPTIONS(`Port=2526, Name=relay-milter-trap')dnl
INPUT_MAIL_FILTER(`relay-milter-trap', `S=inet:10026@127.0.0.1, F=T, T=C:10s;S:30s;R:30s;E:5m')dnl
dnl The macros relay-milter reads (it asks for them itself too; see relay-milter.m4).
define(`confMILTER_MACROS_CONNECT', `j, _, {daemon_name}, {if_name}, {if_addr}, {client_addr}, v')dnl
define(`confMILTER_MACROS_ENVFROM', `i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, {mail_mailer}, {mail_host}, {mail_addr}')dnl
define(`confMILTER_MACROS_ENVRCPT', `i, {rcpt_mailer}, {rcpt_host}, {rcpt_addr}')dnl
define(`confMILTER_MACROS_EOM', `{msg_id}, i')dnl
