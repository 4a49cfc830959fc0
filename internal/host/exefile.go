package host

import (
	"debug/elf"
	"debug/macho"
	"fmt"
)

// ExecutablePlatform reads the platform a local executable is built for
// from its header (ELF or Mach-O).
func ExecutablePlatform(path string) (Platform, error) {
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		arch, ok := elfArch[f.Machine]
		if !ok {
			return Platform{}, fmt.Errorf("executable %s: unsupported machine %v", path, f.Machine)
		}
		goos := "linux"
		switch f.OSABI {
		case elf.ELFOSABI_FREEBSD:
			goos = "freebsd"
		case elf.ELFOSABI_NETBSD:
			goos = "netbsd"
		case elf.ELFOSABI_OPENBSD:
			goos = "openbsd"
		}
		if arch == "arm" && f.Class == elf.ELFCLASS64 {
			arch = "arm64"
		}
		return Platform{OS: goos, Arch: arch}, nil
	}
	if f, err := macho.Open(path); err == nil {
		defer f.Close()
		switch f.Cpu {
		case macho.CpuAmd64:
			return Platform{"darwin", "amd64"}, nil
		case macho.CpuArm64:
			return Platform{"darwin", "arm64"}, nil
		}
		return Platform{}, fmt.Errorf("executable %s: unsupported Mach-O CPU %v", path, f.Cpu)
	}
	return Platform{}, fmt.Errorf("%s is not an executable this provider can install (neither ELF nor Mach-O)", path)
}

var elfArch = map[elf.Machine]string{
	elf.EM_X86_64: "amd64", elf.EM_386: "386", elf.EM_AARCH64: "arm64", elf.EM_ARM: "arm",
	elf.EM_RISCV: "riscv64", elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_LOONGARCH: "loong64",
	elf.EM_MIPS: "mips64",
}
