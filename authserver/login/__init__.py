"""Proving who a user is with a password: argon2id hashing (`passwords`), the login limits
(`limits`), and the one password check that the password grant and the sign-in page share
(`check`)."""
