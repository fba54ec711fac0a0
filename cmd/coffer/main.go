// Command coffer is the Coffer server and its command-line client.
package main

import (
	"context"
	"os"

	"github.com/coffer-kms/coffer/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
