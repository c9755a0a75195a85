"""Tokens: JWT access tokens (`access`, RFC 9068), opaque refresh tokens and secrets (`opaque`),
and what /introspect and /revoke do with either (`introspection`, RFC 7662; `revocation`,
RFC 7009)."""
