package dev.jvmm.sys;

/** Linux ioctl request numbers, computed as the kernel's {@code _IO/_IOR/_IOW/_IOWR} macros do (x86). */
public final class Ioctl {
    private Ioctl() { }

    private static final int NRBITS = 8, TYPEBITS = 8, SIZEBITS = 14;
    private static final int NRSHIFT = 0, TYPESHIFT = NRSHIFT + NRBITS, SIZESHIFT = TYPESHIFT + TYPEBITS,
            DIRSHIFT = SIZESHIFT + SIZEBITS;
    private static final long NONE = 0, WRITE = 1, READ = 2;

    private static long ioc(long dir, int type, int nr, long size) {
        if (size < 0 || size >= (1L << SIZEBITS)) throw new IllegalArgumentException("ioctl size " + size);
        return (dir << DIRSHIFT) | ((long) type << TYPESHIFT) | ((long) nr << NRSHIFT) | (size << SIZESHIFT);
    }

    public static long io(int type, int nr) {
        return ioc(NONE, type, nr, 0);
    }

    /** The kernel writes (the caller reads) a {@code size}-byte argument. */
    public static long ior(int type, int nr, long size) {
        return ioc(READ, type, nr, size);
    }

    public static long iow(int type, int nr, long size) {
        return ioc(WRITE, type, nr, size);
    }

    public static long iowr(int type, int nr, long size) {
        return ioc(READ | WRITE, type, nr, size);
    }

    /** An ioctl request number with its C name, so an error can say which ioctl failed. */
    public record Request(String name, long number) {
        public static Request io(String name, int type, int nr) {
            return new Request(name, Ioctl.io(type, nr));
        }

        public static Request ior(String name, int type, int nr, long size) {
            return new Request(name, Ioctl.ior(type, nr, size));
        }

        public static Request iow(String name, int type, int nr, long size) {
            return new Request(name, Ioctl.iow(type, nr, size));
        }

        public static Request iowr(String name, int type, int nr, long size) {
            return new Request(name, Ioctl.iowr(type, nr, size));
        }

        @Override
        public String toString() {
            return name;
        }
    }
}
