// Package skr owns Azure Key Vault's secure key release (SKR) policy: parsing the policy JSON
// that a key's release_policy carries (versions 1.0.0 and 1.0.2), and evaluating it against
// the claims of an attestation token. It is pure: no I/O, no clock, no crypto. Verifying the
// token (signature, issuer keys, lifetime) is the caller's job; Evaluate trusts the issuer and
// the claims it is given.
//
// Grammar (https://learn.microsoft.com/azure/key-vault/keys/policy-grammar):
//
//	policy     = {"version": "1.0.0" | "1.0.2", "anyOf": [authority, …]}
//	authority  = {"authority": "<https URL>", "anyOf" | "allOf": [condition, …]}
//	condition  = {"claim": "<dotted path>", <operator>: <value>}
//	           | {"anyOf": [condition, …]} | {"allOf": [condition, …]}
//	operator   = equals | notEquals | less | lessOrEquals | greater | greaterOrEquals | exists
//
// Member names match case-insensitively (the grammar is modelled on Azure Policy, whose names
// are case-insensitive), but a member may appear only once in any spelling, and unknown
// members are refused. Version 1.0.2 is accepted with the same grammar: no public source we
// could find describes a difference in the policy body.
//
// Imports: the standard library only. It must not import net/http or any Coffer package.
//
// Threat model: policies come from callers who create keys; tokens' claims come from TEEs
// through an attestation service. Parse bounds the input (MaxPolicySize bytes, MaxDepth
// levels of nesting, MaxConditions conditions, MaxClaimLen per claim path), rejects duplicate
// and unknown members, empty condition lists and values of the wrong type, so that a policy
// either means exactly one thing or does not parse. Evaluate is fail-closed: a missing claim,
// a claim of another type than the policy's value, or a comparison that cannot be made
// counts as not satisfied (except "exists": false, which asks for absence).
package skr
