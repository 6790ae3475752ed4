module ehpgotlsserver

go 1.19
