import ArgumentParser

// Entry point; the commands live beside this file, one file per command group.
Gatehouse.main()
