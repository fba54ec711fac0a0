package token

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
)

// SignClaims returns a signed compact JWS whose payload is claims, for tokens that are not
// access tokens (attestation tokens carry their own claim set and no audience). iss is
// required. The Signer sets iat and nbf to now, exp to now plus its lifetime and jti to 16
// random bytes; claims may not set them, so no caller can issue a token that outlives the
// publication of the key that signed it. claims is not modified.
func (s *Signer) SignClaims(claims map[string]any) (string, error) {
	if iss, _ := claims["iss"].(string); iss == "" {
		return "", errors.New("token signer: iss is required")
	}
	for _, k := range []string{"iat", "nbf", "exp", "jti"} {
		if _, ok := claims[k]; ok {
			return "", fmt.Errorf("token signer: %s is set by the signer", k)
		}
	}
	now := s.now()
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	c := make(map[string]any, len(claims)+4)
	for k, v := range claims {
		c[k] = v
	}
	c["iat"], c["nbf"], c["exp"] = now.Unix(), now.Unix(), now.Add(s.lifetime).Unix()
	c["jti"] = b64.EncodeToString(id[:])
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("token signer: %w", err)
	}
	return s.signPayload(payload)
}

// VerifyClaims checks raw as a compact JWS signed by one of keys (with the same checks as
// Validate up to and including the signature) and returns its payload decoded with numbers
// as json.Number. It does not check iss, aud or lifetime: callers that use it must. Every
// failure is ErrInvalidToken wrapped with a fixed reason.
func VerifyClaims(raw string, keys KeySet) (map[string]any, error) {
	payload, err := verifyJWS(raw, keys)
	if err != nil {
		return nil, err
	}
	return decodeClaimsMap(payload)
}

// decodeClaimsMap decodes a payload that must be one JSON object without duplicate member
// names, keeping numbers as json.Number.
func decodeClaimsMap(payload []byte) (map[string]any, error) {
	if err := checkJSONObject(payload, nil); err != nil {
		return nil, invalidJSON(err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, errPayload
	}
	return m, nil
}
