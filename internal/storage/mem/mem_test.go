package mem

import (
	"testing"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return New() })
}
