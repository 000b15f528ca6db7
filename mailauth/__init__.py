"""OAuth2 for mailbox logins, shared by the daemon and the `mail authorize` command: the provider's token
endpoint (oauthlib over requests) and the file that keeps the refresh token. No database, no Flask."""
