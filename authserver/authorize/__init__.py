"""The authorization endpoint's rules (RFC 6749 §4.1, RFC 7636, RFC 9207, SPEC "GET /authorize"),
as plain functions: no HTTP framework, no SQL.

- `request`: validate the query of GET /authorize into an `AuthorizationRequest`, or an
  `AuthorizationError` that says whether it is shown as a page or sent to the redirect URI.
- `response`: the redirect back to the app (`state`, `iss`), and the CSP source it needs.
- `pkce`: the S256 code challenge and its check at /token.
- `steps`: what the person must do next (sign in, consent, nothing), and remembered consent.
- `csrf`: tokens for the HTML forms, bound to a per-browser secret.
- `wording`: each scope in words an end user understands, for the consent page.
"""
