// s2-encode: an independent S2 / Snappy-compatible stream encoder for the decoder's property tests,
// built from Debian's golang-github-klauspost-compress-dev (the library PBM writes .s2 and .zst
// files with). Reads stdin, writes the stream to stdout. Flags choose the writer options PBM and
// users meet; -zstd writes a zstd stream with zstd.NewWriter's defaults instead.
package main

import (
	"bufio"
	"flag"
	"io"
	"os"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func main() {
	level := flag.String("level", "default", "default | better | best | uncompressed")
	block := flag.Int("block", 0, "block size in bytes (0 = library default, 1 MiB)")
	index := flag.Bool("index", false, "append the seek index chunk (0x99)")
	padding := flag.Int("padding", 0, "pad the stream to a multiple of this many bytes (0xfe chunks)")
	snappy := flag.Bool("snappy", false, "Snappy-compatible output (sNaPpY identifier, no S2 extensions)")
	concurrency := flag.Int("concurrency", 1, "encoder goroutines")
	useZstd := flag.Bool("zstd", false, "write zstd (klauspost/compress/zstd defaults) instead of S2")
	flag.Parse()

	if *useZstd {
		out := bufio.NewWriterSize(os.Stdout, 1<<20)
		enc, err := zstd.NewWriter(out)
		if err == nil {
			_, err = io.Copy(enc, os.Stdin)
		}
		if err == nil {
			err = enc.Close()
		}
		if err == nil {
			err = out.Flush()
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		return
	}

	opts := []s2.WriterOption{s2.WriterConcurrency(*concurrency)}
	switch *level {
	case "better":
		opts = append(opts, s2.WriterBetterCompression())
	case "best":
		opts = append(opts, s2.WriterBestCompression())
	case "uncompressed":
		opts = append(opts, s2.WriterUncompressed())
	}
	if *block > 0 {
		opts = append(opts, s2.WriterBlockSize(*block))
	}
	if *index {
		opts = append(opts, s2.WriterAddIndex())
	}
	if *padding > 0 {
		opts = append(opts, s2.WriterPadding(*padding))
	}
	if *snappy {
		opts = append(opts, s2.WriterSnappyCompat())
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	w := s2.NewWriter(out, opts...)
	if _, err := io.Copy(w, os.Stdin); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if err := w.Close(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if err := out.Flush(); err != nil {
		os.Exit(1)
	}
}
