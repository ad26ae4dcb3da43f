package main

import (
	_ "github.com/transparency-dev/formats/log"
	_ "github.com/transparency-dev/merkle/proof"
	_ "golang.org/x/mod/sumdb/note"
	_ "golang.org/x/mod/sumdb/tlog"
)

func main() {}
