// snappy-encode: golang/snappy's framed writer (snappy.NewBufferedWriter), the writer PBM uses for
// `.snappy` files, built from Debian's golang-github-golang-snappy-dev. Reads stdin, writes stdout.
package main

import (
	"io"
	"os"

	"github.com/golang/snappy"
)

func main() {
	w := snappy.NewBufferedWriter(os.Stdout)
	if _, err := io.Copy(w, os.Stdin); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if err := w.Close(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
