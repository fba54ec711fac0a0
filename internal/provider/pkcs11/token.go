package pkcs11

import (
	"encoding/json"
	"fmt"
)

// Handles name their token. An installation may use several tokens of one library (the
// default token and one per managed HSM pool, configured by the server), so every handle
// this provider makes records the label of its token in "tok"; a handle naming another
// token is refused (ErrHSM, 503), never looked up here. Handles without "tok" come from
// before per-pool tokens and are accepted: the server sends them only to the default token.

// maxLabel is the length of CK_TOKEN_INFO.label: a longer "tok" names no token.
const maxLabel = 32

// stamp adds this provider's token label to a handle marshalHandle or marshalAESHandle made.
func (p *Provider) stamp(h []byte) []byte {
	if p.label == "" {
		return h
	}
	var doc handleDoc
	if err := json.Unmarshal(h, &doc); err != nil {
		panic("pkcs11: cannot decode a handle just made") // unreachable
	}
	doc.Tok = p.label
	b, err := json.Marshal(doc)
	if err != nil {
		panic("pkcs11: cannot encode a handle") // unreachable
	}
	return b
}

// ownHandle parses a handle (parseHandle) and checks that it names this provider's token
// or none.
func (p *Provider) ownHandle(h []byte) (parsed, *publicKey, error) {
	doc, pub, err := parseHandle(h)
	if err != nil {
		return parsed{}, nil, err
	}
	if doc.Label != "" && doc.Label != p.label {
		return parsed{}, nil, fmt.Errorf("pkcs11: the key is in token %q, not in token %q: %w", doc.Label, p.label, ErrHSM)
	}
	return doc, pub, nil
}

// HandleToken returns the token label a handle names, "" if it names none (a handle made
// before handles named their token) or is not a valid handle of this provider.
func HandleToken(h []byte) string {
	doc, _, err := parseHandle(h)
	if err != nil {
		return ""
	}
	return doc.Label
}

// Label is the label of the provider's token.
func (p *Provider) Label() string { return p.label }
