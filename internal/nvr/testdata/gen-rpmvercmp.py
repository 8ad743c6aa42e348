# Random version pairs with librpmio's own rpmvercmp() verdict on them.
import ctypes, random, sys
lib = ctypes.CDLL("librpmio.so.9")
lib.rpmvercmp.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
random.seed(int(sys.argv[1]))
n = int(sys.argv[2])
alpha = "0011229aAbz~^._+"
def s():
    return "".join(random.choice(alpha) for _ in range(random.randint(0, 7)))
print("# a<TAB>b<TAB>rpmvercmp(a, b) from Debian bookworm librpmio.so.9 (rpm 4.18.0), random seed %s" % sys.argv[1])
for _ in range(n):
    a, b = s(), s()
    if random.random() < 0.4:  # near-equal pairs exercise the subtle rules
        b = a[:random.randint(0, len(a))] + s()[:2]
    print("%s\t%s\t%d" % (a, b, lib.rpmvercmp(a.encode(), b.encode())))
