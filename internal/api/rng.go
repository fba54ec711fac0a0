package api

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
)

type rngRequest struct {
	Count *int `json:"count"`
}

// GetRandomBytes answers POST /rng: 1–128 random bytes, base64url encoded (Key Vault's
// GetRandomBytes; a managed HSM operation in Azure, served by vaults too in Coffer).
func GetRandomBytes(w http.ResponseWriter, r *http.Request, _ *Call) error {
	var req rngRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Count == nil || *req.Count < 1 || *req.Count > 128 {
		return Errorf(http.StatusBadRequest, "BadParameter", "count must be an integer from 1 to 128")
	}
	b := make([]byte, *req.Count)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]string{"value": base64.RawURLEncoding.EncodeToString(b)})
	return nil
}
