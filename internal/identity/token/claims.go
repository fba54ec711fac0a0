package token

import (
	"encoding/json"
	"errors"
)

// Claims are the claims of a Coffer access token, named as in Microsoft identity platform
// v2.0 access tokens. Times are NumericDates: whole seconds since the Unix epoch, 0 if absent.
type Claims struct {
	// Issuer (iss) is the issuer URL, e.g. https://login.example/<tenant>/v2.0.
	Issuer string `json:"iss,omitempty"`
	// Audience (aud) is the resource the token is for; a string or an array on the wire.
	Audience Audience `json:"aud,omitempty"`
	// TenantID (tid) is the tenant the principal belongs to.
	TenantID string `json:"tid,omitempty"`
	// ObjectID (oid) is the principal's object id.
	ObjectID string `json:"oid,omitempty"`
	// AppID (appid) is the client application's id.
	AppID string `json:"appid,omitempty"`
	// Subject (sub) is the principal the token is about.
	Subject string `json:"sub,omitempty"`
	// IssuedAt (iat) is when the token was issued.
	IssuedAt int64 `json:"iat,omitempty"`
	// NotBefore (nbf) is when the token starts being valid.
	NotBefore int64 `json:"nbf,omitempty"`
	// ExpiresAt (exp) is when the token stops being valid; Validate requires it.
	ExpiresAt int64 `json:"exp,omitempty"`
	// ID (jti) is the token's unique id.
	ID string `json:"jti,omitempty"`
	// Roles (roles) are the application roles granted to the principal.
	Roles []string `json:"roles,omitempty"`
	// Version (ver) is the token format version, "2.0".
	Version string `json:"ver,omitempty"`
	// AZP (azp) is the authorized party (client id) in v2.0 tokens; optional.
	AZP string `json:"azp,omitempty"`
}

// claimNames are the JSON names of Claims; a payload member that differs from one of them
// only in case is rejected, because encoding/json would match it case-insensitively.
var claimNames = []string{"iss", "aud", "tid", "oid", "appid", "sub", "iat", "nbf", "exp", "jti", "roles", "ver", "azp"}

// Audience is the aud claim: one or more resource identifiers. It decodes from a JSON string
// or an array of strings and encodes a single value as a string, as Entra ID does.
type Audience []string

// Contains reports whether a holds one of want, compared exactly.
func (a Audience) Contains(want []string) bool {
	for _, got := range a {
		for _, w := range want {
			if got == w {
				return true
			}
		}
	}
	return false
}

// MarshalJSON encodes one audience as a string and several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON decodes a string or an array of strings; null leaves a unchanged.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return errors.New("aud: empty")
	}
	switch b[0] {
	case 'n':
		return nil // null: treated as absent (the caller's zero value)
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	case '[':
		var l []string
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		*a = Audience(l)
		return nil
	}
	return errors.New("aud: want a string or an array of strings")
}
