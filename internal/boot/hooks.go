package boot

// The distribution hooks the package ships (internal/boot/hooks/, see each
// file): Debian's kernel and initramfs hooks, which make a layer's entry
// follow a kernel changed inside it, and the /etc/grub.d snippet that keeps
// grub.cfg sourcing imgbase's menu through update-grub. They come with the
// package only: copied by imgbase into a layer of an image without it, they
// would stand where the package's conffiles go, and installing the package
// there later would stop at dpkg's conffile prompt.

// hookPaths maps where each hook goes, relative to the root, to its file
// in the source tree.
var hookPaths = []struct{ dst, src string }{
	{"etc/kernel/postinst.d/zz-imgbase", "hooks/kernel-postinst"},
	{"etc/kernel/postrm.d/zz-imgbase", "hooks/kernel-postrm"},
	{"etc/initramfs/post-update.d/imgbase", "hooks/initramfs-post-update"},
	{"etc/grub.d/15_imgbase", "hooks/15_imgbase"},
}

// HookPaths are the package's hooks, relative to the root; the /etc merge
// of an update leaves them to the packages of each side, like the units.
func HookPaths() []string {
	var out []string
	for _, h := range hookPaths {
		out = append(out, h.dst)
	}
	return out
}
