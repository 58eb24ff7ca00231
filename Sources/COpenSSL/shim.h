#ifndef GATEHOUSE_COPENSSL_SHIM_H
#define GATEHOUSE_COPENSSL_SHIM_H
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

// ES256 with the nonce computed ahead (OAuthCrypto's SigningKey). k, its inverse and
// r = (kG).x depend on nothing but the curve, so a worker computes them in batches, while
// the curve's tables are in cache, and a signature is left with s = k^-1 (z + r d) alone.
// No EVP call takes a precomputed nonce; these ECDSA calls are deprecated in OpenSSL 3.0
// but kept throughout 3.x.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
/// The EC_KEY view of an EC `pkey` (a reference the caller frees with gatehouse_ec_key_free).
static inline EC_KEY *gatehouse_ec_key(EVP_PKEY *pkey) { return EVP_PKEY_get1_EC_KEY(pkey); }
static inline void gatehouse_ec_key_free(EC_KEY *key) { EC_KEY_free(key); }
/// A fresh k from OpenSSL's private DRBG: *kinv = k^-1 mod n and *r = (kG).x mod n. 1 on success.
static inline int gatehouse_ecdsa_nonce(EC_KEY *key, BIGNUM **kinv, BIGNUM **r) {
    return ECDSA_sign_setup(key, NULL, kinv, r);
}
/// The signature of a 32-byte digest with one nonce of gatehouse_ecdsa_nonce (used once).
static inline ECDSA_SIG *gatehouse_ecdsa_sign(const unsigned char *digest, EC_KEY *key, const BIGNUM *kinv, const BIGNUM *r) {
    return ECDSA_do_sign_ex(digest, 32, kinv, r, key);
}
#pragma GCC diagnostic pop
#endif
