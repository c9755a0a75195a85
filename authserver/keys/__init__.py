"""Signing keys (SPEC "Signing keys"): the key-encryption key (`kek`), generation and bootstrap
(`bootstrap`), the KeyRing requests sign with (`ring`), rotation and revocation (`lifecycle`), and
how every serving process follows changes (`watch`)."""
