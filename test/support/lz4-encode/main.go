// lz4-encode: pierrec/lz4's frame writer (the library PBM writes `.lz4` files with), built from
// Debian's golang-github-pierrec-lz4-dev. Reads stdin, writes stdout.
package main

import (
	"flag"
	"io"
	"os"

	"github.com/pierrec/lz4"
)

func main() {
	block := flag.Int("block", 0, "maximum block size: 65536, 262144, 1048576 or 4194304 (0 = 4 MiB)")
	blockChecksum := flag.Bool("block-checksum", false, "XXH32 of each block")
	noChecksum := flag.Bool("no-checksum", false, "no content checksum")
	level := flag.Int("level", 0, "compression level (0 = fastest)")
	flag.Parse()

	w := lz4.NewWriter(os.Stdout)
	w.Header.BlockMaxSize = *block
	w.Header.BlockChecksum = *blockChecksum
	w.Header.NoChecksum = *noChecksum
	w.Header.CompressionLevel = *level
	if _, err := io.Copy(w, os.Stdin); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if err := w.Close(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
