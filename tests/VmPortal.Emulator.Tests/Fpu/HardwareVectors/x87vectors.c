/*
 * Records x87 reference vectors on the host CPU (real silicon) for FpuHardwareVectorTests.
 * Build and run on an x86 host:  gcc -O1 -o x87vectors x87vectors.c && ./x87vectors > x87-vectors.txt
 * Every vector starts from FNINIT + FLDCW (all exceptions masked), loads the operands with FLD m80 (b first, so
 * a ends up in ST0), executes one instruction given by its raw bytes, then records FNSTSW and the stack (or the
 * memory result). Line format (hex):
 *   op cw a b -> sw r0 r1 mem
 * a, b, r0, r1: 20 hex digits "SEEE" + 16 significand digits; mem: 16 hex digits (integer/float stores).
 *
 * With the argument "unmasked" it records x87-unmasked-vectors.txt instead: random exception masks (so unmasked
 * exceptions occur), the state captured with FNSAVE (a no-wait instruction, so no #MF is taken):
 *   op cw a b memin -> cw sw tw st0 st1 st2 memout
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

typedef struct { uint64_t sig; uint16_t se; } __attribute__((packed)) f80;

static uint64_t s = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }

static f80 mk(int neg, int exp, uint64_t sig) { f80 r; r.sig = sig; r.se = (uint16_t)((neg ? 0x8000 : 0) | (exp & 0x7FFF)); return r; }

static uint64_t sig64(void)
{
    uint64_t v = rnd() | 0x8000000000000000ull;
    switch (rnd() % 6) {
    case 0: v &= ~((1ull << (rnd() % 64)) - 1); v |= 0x8000000000000000ull; break;
    case 1: v |= (1ull << (rnd() % 64)) - 1; break;
    }
    return v;
}

/* general operand: mostly normal near 1, some specials */
static f80 gen(int spread)
{
    int neg = rnd() & 1;
    switch (rnd() % 16) {
    case 0: return mk(neg, 0, sig64() >> (1 + rnd() % 63));                 /* denormal */
    case 1: return mk(neg, 0, 0);
    case 2: return mk(neg, 0x7FFF, 0x8000000000000000ull);                  /* infinity */
    case 3: return mk(neg, 0x7FFF, 0xC000000000000000ull | (rnd() >> 20)); /* QNaN */
    case 4: return mk(neg, 0x7FFF, 0x8000000000000000ull | (rnd() >> 20) | 1); /* SNaN */
    case 5: return mk(neg, 1 + rnd() % 64, sig64());                        /* near underflow */
    case 6: return mk(neg, 0x7FFE - rnd() % 64, sig64());                  /* near overflow */
    default: return mk(neg, 16383 + (int)(rnd() % (2 * spread + 1)) - spread, sig64());
    }
}

static f80 normal(int lo, int hi, int allowNeg)
{
    return mk(allowNeg ? (int)(rnd() & 1) : 0, 16383 + lo + (int)(rnd() % (hi - lo + 1)), sig64());
}

static void hex80(f80 v) { printf(" %04X%016llX", v.se, (unsigned long long)v.sig); }

/* one instruction given as two raw bytes, register form */
#define REGOP(b1, b2) \
    __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t.byte " #b1 ", " #b2 "\n\t" \
                     "fnstsw %[sw]\n\tfstpt %[r0]\n\tfstpt %[r1]\n\tfninit" \
                     : [r0] "=m"(r0), [r1] "=m"(r1), [sw] "=m"(sw) : [cw] "m"(cw), [a] "m"(a), [b] "m"(b))

#define MEMOP(insn, dst) \
    __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t" insn " %[m]\n\t" \
                     "fnstsw %[sw]\n\tfstpt %[r0]\n\tfstpt %[r1]\n\tfninit" \
                     : [r0] "=m"(r0), [r1] "=m"(r1), [sw] "=m"(sw), [m] "=m"(dst) : [cw] "m"(cw), [a] "m"(a), [b] "m"(b))

enum { N = 160 };

typedef struct { uint32_t cw, sw, tw, fip, fcs, fdp, fds; f80 st[8]; } __attribute__((packed)) save32;

#define SAVEOP(insn) \
    __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t" insn "\n\tfnsave %[img]\n\tfninit" \
                     : [img] "=m"(img), [m] "+m"(mem) : [cw] "m"(cw), [a] "m"(a), [b] "m"(b))

static int unmasked(void)
{
    static const char *names[] = { "fadd", "fsub", "fmul", "fdiv", "fsqrt", "fscale", "frndint", "fxtract", "fprem",
        "fcom", "fst32", "fst64", "fist16", "fist32", "fist64", "fbstp", "fld32", "fld64", "fsin", "fyl2x", "fpatan",
        "f2xm1", "fptan", "fchs", "fstp80", "fxch", "fcomp", "fcomi", "fcomip" };
    int ops = (int)(sizeof names / sizeof names[0]);
    for (int op = 0; op < ops; op++) {
        for (int i = 0; i < 100; i++) {
            f80 a = gen(40), b = gen(40);
            save32 img;
            uint64_t mem[2] = { 0xA5A5A5A5A5A5A5A5ull, 0xA5A5A5A5A5A5A5A5ull };
            uint16_t cw = (uint16_t)((rnd() & 0x3F) | ((rnd() % 4) << 10) | ((uint16_t[]){0, 2, 3, 3}[rnd() % 4] << 8));
            const char *n = names[op];
            if (!strcmp(n, "fld32")) { uint32_t v = (uint32_t)rnd(); if (rnd() % 3 == 0) v &= 0x807FFFFF; if (rnd() % 3 == 0) v |= 0x7F800000; mem[0] = v; }
            if (!strcmp(n, "fld64")) { uint64_t v = rnd(); if (rnd() % 3 == 0) v &= 0x800FFFFFFFFFFFFFull; if (rnd() % 3 == 0) v |= 0x7FF0000000000000ull; mem[0] = v; }
            if (!strcmp(n, "fscale")) b = mk(rnd() & 1, 16383 + (int)(rnd() % 15), sig64());
            if (!strcmp(n, "fsin") || !strcmp(n, "fptan") || !strcmp(n, "f2xm1")) if (rnd() % 2) a = normal(-8, -1, 1);
            if (!strcmp(n, "fyl2x") && rnd() % 2) a = normal(-10, 10, 0);
            uint64_t memin = mem[0];
            switch (op) {
            case 0: SAVEOP(".byte 0xD8, 0xC1"); break;
            case 1: SAVEOP(".byte 0xD8, 0xE1"); break;
            case 2: SAVEOP(".byte 0xD8, 0xC9"); break;
            case 3: SAVEOP(".byte 0xD8, 0xF1"); break;
            case 4: SAVEOP(".byte 0xD9, 0xFA"); break;
            case 5: SAVEOP(".byte 0xD9, 0xFD"); break;
            case 6: SAVEOP(".byte 0xD9, 0xFC"); break;
            case 7: SAVEOP(".byte 0xD9, 0xF4"); break;
            case 8: SAVEOP(".byte 0xD9, 0xF8"); break;
            case 9: SAVEOP(".byte 0xD8, 0xD1"); break;
            case 10: SAVEOP("fstps %[m]"); break;
            case 11: SAVEOP("fstpl %[m]"); break;
            case 12: SAVEOP("fistps %[m]"); break;
            case 13: SAVEOP("fistpl %[m]"); break;
            case 14: SAVEOP("fistpll %[m]"); break;
            case 15: SAVEOP("fbstp %[m]"); break;
            case 16: SAVEOP("flds %[m]"); break;
            case 17: SAVEOP("fldl %[m]"); break;
            case 18: SAVEOP(".byte 0xD9, 0xFE"); break;
            case 19: SAVEOP(".byte 0xD9, 0xF1"); break;
            case 20: SAVEOP(".byte 0xD9, 0xF3"); break;
            case 21: SAVEOP(".byte 0xD9, 0xF0"); break;
            case 22: SAVEOP(".byte 0xD9, 0xF2"); break;
            case 23: SAVEOP(".byte 0xD9, 0xE0"); break;
            case 24: SAVEOP("fstpt %[m]"); break;
            case 25: SAVEOP(".byte 0xD9, 0xCA"); break;       /* FXCH ST2 (empty): stack underflow */
            case 26: SAVEOP(".byte 0xD8, 0xD9"); break;       /* FCOMP ST1 */
            case 27: SAVEOP(".byte 0xDB, 0xF1\n\tpushfq\n\tpopq %[m]"); break;   /* FCOMI ST1: EFLAGS into mem */
            case 28: SAVEOP(".byte 0xDF, 0xF1\n\tpushfq\n\tpopq %[m]"); break;   /* FCOMIP ST1 */
            }
            printf("%s %04X", n, cw);
            hex80(a); hex80(b);
            printf(" %016llX -> %04X %04X %04X", (unsigned long long)memin, img.cw & 0xFFFF, img.sw & 0xFFFF, img.tw & 0xFFFF);
            hex80(img.st[0]); hex80(img.st[1]); hex80(img.st[2]);
            printf(" %016llX %04X\n", (unsigned long long)mem[0], (unsigned)(mem[1] & 0xFFFF));
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "unmasked")) return unmasked();
    static const char *names[] = {
        "fadd", "fsub", "fsubr", "fmul", "fdiv", "fdivr", "fsqrt", "fprem", "fprem1", "fscale", "frndint",
        "fxtract", "fcom", "fucom", "fxam", "ftst", "fsin", "fcos", "fptan", "fpatan", "f2xm1", "fyl2x", "fyl2xp1",
        "fsincos", "fst32", "fst64", "fist16", "fist32", "fist64", "fbstp", "fchs" };
    int ops = (int)(sizeof names / sizeof names[0]);
    for (int op = 0; op < ops; op++) {
        for (int i = 0; i < N; i++) {
            f80 a, b, r0, r1;
            uint16_t sw = 0;
            uint64_t mem = 0;
            uint16_t cw = (uint16_t)(0x003F | ((rnd() % 4) << 10) | ((uint16_t[]){0, 2, 3, 3}[rnd() % 4] << 8));
            const char *n = names[op];
            memset(&r0, 0, sizeof r0); memset(&r1, 0, sizeof r1);
            a = gen(40); b = gen(40);
            if (!strcmp(n, "fsin") || !strcmp(n, "fcos") || !strcmp(n, "fptan") || !strcmp(n, "fsincos")) {
                a = (rnd() % 8) ? normal(-8, 12, 1) : gen(40); cw = (uint16_t)(0x037F | ((rnd() % 4) << 10));
            } else if (!strcmp(n, "f2xm1")) {
                a = (rnd() % 8) ? normal(-20, -1, 1) : gen(4); cw = (uint16_t)(0x037F | ((rnd() % 4) << 10));
            } else if (!strcmp(n, "fyl2x")) {
                a = (rnd() % 8) ? normal(-100, 100, 0) : gen(40); b = normal(-3, 3, 1); cw = (uint16_t)(0x037F | ((rnd() % 4) << 10));
            } else if (!strcmp(n, "fyl2xp1")) {
                a = (rnd() % 8) ? normal(-30, -3, 1) : gen(3); b = normal(-3, 3, 1); cw = (uint16_t)(0x037F | ((rnd() % 4) << 10));
            } else if (!strcmp(n, "fpatan")) {
                a = (rnd() % 8) ? normal(-20, 20, 1) : gen(40); b = (rnd() % 8) ? normal(-20, 20, 1) : gen(40);
                cw = (uint16_t)(0x037F | ((rnd() % 4) << 10));
            } else if (!strcmp(n, "fscale")) {
                b = mk(rnd() & 1, 16383 + (int)(rnd() % 15), sig64());      /* |ST1| up to 2^15 */
            } else if (!strncmp(n, "fist", 4) || !strcmp(n, "fbstp") || !strcmp(n, "frndint")) {
                a = (rnd() % 6) ? normal(-3, 66, 1) : gen(40);
            } else if (!strcmp(n, "fprem") || !strcmp(n, "fprem1")) {
                a = (rnd() % 8) ? normal(-10, 200, 1) : gen(40); b = (rnd() % 8) ? normal(-10, 10, 1) : gen(40);
            }
            switch (op) {
            case 0: REGOP(0xD8, 0xC1); break;                 /* FADD ST0,ST1 */
            case 1: REGOP(0xD8, 0xE1); break;                 /* FSUB ST0,ST1 */
            case 2: REGOP(0xD8, 0xE9); break;                 /* FSUBR ST0,ST1 */
            case 3: REGOP(0xD8, 0xC9); break;                 /* FMUL */
            case 4: REGOP(0xD8, 0xF1); break;                 /* FDIV ST0,ST1 */
            case 5: REGOP(0xD8, 0xF9); break;                 /* FDIVR ST0,ST1 */
            case 6: REGOP(0xD9, 0xFA); break;                 /* FSQRT */
            case 7: REGOP(0xD9, 0xF8); break;                 /* FPREM */
            case 8: REGOP(0xD9, 0xF5); break;                 /* FPREM1 */
            case 9: REGOP(0xD9, 0xFD); break;                 /* FSCALE */
            case 10: REGOP(0xD9, 0xFC); break;                /* FRNDINT */
            case 11: REGOP(0xD9, 0xF4); break;                /* FXTRACT */
            case 12: REGOP(0xD8, 0xD1); break;                /* FCOM ST1 */
            case 13: REGOP(0xDD, 0xE1); break;                /* FUCOM ST1 */
            case 14: REGOP(0xD9, 0xE5); break;                /* FXAM */
            case 15: REGOP(0xD9, 0xE4); break;                /* FTST */
            case 16: REGOP(0xD9, 0xFE); break;                /* FSIN */
            case 17: REGOP(0xD9, 0xFF); break;                /* FCOS */
            case 18: REGOP(0xD9, 0xF2); break;                /* FPTAN */
            case 19: REGOP(0xD9, 0xF3); break;                /* FPATAN */
            case 20: REGOP(0xD9, 0xF0); break;                /* F2XM1 */
            case 21: REGOP(0xD9, 0xF1); break;                /* FYL2X */
            case 22: REGOP(0xD9, 0xF9); break;                /* FYL2XP1 */
            case 23: REGOP(0xD9, 0xFB); break;                /* FSINCOS */
            case 24: { uint32_t m32 = 0; MEMOP("fsts", m32); mem = m32; break; }
            case 25: { uint64_t m64 = 0; MEMOP("fstl", m64); mem = m64; break; }
            case 26: { uint16_t m16 = 0; MEMOP("fists", m16); mem = m16; break; }
            case 27: { uint32_t m32 = 0; MEMOP("fistl", m32); mem = m32; break; }
            case 28: { uint64_t m64 = 0; MEMOP("fistpll", m64); mem = m64; break; }
            case 29: { struct { uint64_t lo; uint16_t hi; } __attribute__((packed)) bcd = {0, 0}; MEMOP("fbstp", bcd); mem = bcd.lo; r1.se = bcd.hi; break; }
            case 30: REGOP(0xD9, 0xE0); break;                /* FCHS */
            }
            printf("%s %04X", n, cw);
            hex80(a); hex80(b);
            printf(" -> %04X", sw);
            hex80(r0); hex80(r1);
            printf(" %016llX\n", (unsigned long long)mem);
        }
    }
    return 0;
}
