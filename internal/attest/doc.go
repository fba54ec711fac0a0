// Package attest owns Coffer's attestation service, the role Microsoft Azure Attestation
// (MAA) plays for Key Vault: it verifies a trusted execution environment's evidence, checks
// it against the attestation provider's policy and the binding of the TEE's runtime data,
// and returns the claims of an attestation token, which the caller signs.
//
// Evidence types:
//   - "sevsnpvm": an AMD SEV-SNP attestation report with its VCEK certificate, verified offline
//     with github.com/google/go-sev-guest to the AMD roots that library embeds (ARK/ASK for
//     Milan, Genoa and Turin); no certificate is ever fetched.
//   - "sim": a software TEE for development and tests. Its report is signed by a simulator key
//     the operator registers; without one the type is disabled. Its tokens say
//     x-ms-attestation-type "sim" and carry x-ms-sim-* claims, never x-ms-sevsnpvm-*, so a
//     release policy written for real hardware cannot match them.
//   - "tdxvm": an Intel TDX quote (v4) verified offline with github.com/google/go-tdx-guest to
//     the pinned Intel SGX Root CA, with Intel's collateral (TCB info, QE identity, optional
//     CRLs) carried in the request or configured; nothing is fetched (tdx.go).
//
// Binding: the runtime data (MAA's runtimeData, JSON holding the TEE's public keys) must be
// what the TEE put in the report: REPORT_DATA = SHA-256(runtime data) ‖ 32 zero bytes.
//
// wire.go holds the request and response bodies (MAA's shapes); the HTTP handler lives in
// internal/server. This package must not import net/http, storage or server.
//
// Threat model: evidence comes from anyone who can reach the service; it is untrusted until
// the hardware vendor's signature chain verifies, and even then only the TEE's own claims are
// vouched for (not who sent them). Bodies, reports, certificates and runtime data are bounded
// before parsing; every rejection is an *Error with a fixed code and a message that names the
// failed check, never echoing key material. The token signing key is the caller's (kept
// sealed by the barrier and rotated by internal/identity/token's Signer).
package attest
