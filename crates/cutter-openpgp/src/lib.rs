//! OpenPGP for cutter: pinned recipient keys, streaming encryption and decryption,
//! detached signatures and key generation, interoperable with GnuPG both ways.
