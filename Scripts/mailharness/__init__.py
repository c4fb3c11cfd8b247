"""Real mail parts on loopback for relay-milter's demo and end-to-end tests:
a private Postfix instance, smtp-sink, relay-milter itself, and a small
MTA-side milter protocol client."""
