using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace VmPortal.Core.CloudInit;

/// <summary>
/// SHA-512 crypt ("$6$salt$hash"), the password hash of glibc's crypt(3), /etc/shadow, <c>chpasswd -e</c>,
/// <c>openssl passwd -6</c> and <c>mkpasswd -m sha-512</c>; written from Ulrich Drepper's "Unix crypt using
/// SHA-256 and SHA-512" specification. Cloud-init's <c>passwd:</c> takes such a hash, so the portal stores and
/// writes only the hash, never the password.
/// </summary>
public static partial class Sha512Crypt
{
    public const int DefaultRounds = 5000;
    private const int MinRounds = 1000, MaxRounds = 999_999_999, MaxSaltLength = 16;
    private const string Alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary>Hashes <paramref name="password"/> with a fresh random 16-character salt.</summary>
    public static string Hash(string password) => Hash(password, RandomSalt());

    /// <summary>
    /// Hashes with the given salt (at most 16 characters of <c>[./0-9A-Za-z]</c>; longer salts are cut as in
    /// glibc). <paramref name="rounds"/> other than 5000 is written as <c>rounds=N$</c> (clamped to 1000…999999999).
    /// </summary>
    public static string Hash(string password, string salt, int rounds = DefaultRounds) =>
        Compute(password, salt, rounds, rounds != DefaultRounds);

    private static string Compute(string password, string salt, int rounds, bool customRounds)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(salt);
        if (salt.Length > MaxSaltLength) salt = salt[..MaxSaltLength];
        foreach (var ch in salt)
            if (Alphabet.IndexOf(ch) < 0) throw new ArgumentException("the salt may contain only . / 0-9 A-Z a-z", nameof(salt));
        rounds = Math.Clamp(rounds, MinRounds, MaxRounds);

        byte[] p = Encoding.UTF8.GetBytes(password);
        byte[] s = Encoding.ASCII.GetBytes(salt);

        // B = H(P S P)
        byte[] b = Sha(p, s, p);

        // A = H(P S B-repeated-to-|P| bits-of-|P|)
        using var a = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
        a.AppendData(p);
        a.AppendData(s);
        int n;
        for (n = p.Length; n > 64; n -= 64) a.AppendData(b);
        a.AppendData(b, 0, n);
        for (n = p.Length; n > 0; n >>= 1) a.AppendData((n & 1) != 0 ? b : p);
        byte[] c = a.GetHashAndReset();

        // P' = H(P repeated |P| times), cut to |P|; S' = H(S repeated 16 + A[0] times), cut to |S|.
        using var dp = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
        for (int i = 0; i < p.Length; i++) dp.AppendData(p);
        byte[] pBytes = Repeat(dp.GetHashAndReset(), p.Length);
        using var ds = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
        for (int i = 0; i < 16 + c[0]; i++) ds.AppendData(s);
        byte[] sBytes = Repeat(ds.GetHashAndReset(), s.Length);

        for (int i = 0; i < rounds; i++)
        {
            a.AppendData((i & 1) != 0 ? pBytes : c);
            if (i % 3 != 0) a.AppendData(sBytes);
            if (i % 7 != 0) a.AppendData(pBytes);
            a.AppendData((i & 1) != 0 ? c : pBytes);
            c = a.GetHashAndReset();
        }

        var sb = new StringBuilder("$6$", 3 + 20 + MaxSaltLength + 1 + 86);
        if (customRounds) sb.Append("rounds=").Append(rounds).Append('$');
        sb.Append(salt).Append('$');
        // The digest's bytes are written in this order, three at a time, 4 characters per 24 bits.
        ReadOnlySpan<byte> order =
        [
            0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4, 47, 5, 26, 6, 27, 48, 28, 49, 7, 50, 8, 29, 9, 30, 51,
            31, 52, 10, 53, 11, 32, 12, 33, 54, 34, 55, 13, 56, 14, 35, 15, 36, 57, 37, 58, 16, 59, 17, 38, 18, 39, 60,
            40, 61, 19, 62, 20, 41,
        ];
        for (int i = 0; i < order.Length; i += 3) Base64(sb, (c[order[i]] << 16) | (c[order[i + 1]] << 8) | c[order[i + 2]], 4);
        Base64(sb, c[63], 2);
        return sb.ToString();
    }

    /// <summary>True when <paramref name="hash"/> is a "$6$" hash of <paramref name="password"/>.</summary>
    public static bool Verify(string password, string hash)
    {
        var m = HashPattern().Match(hash ?? "");
        if (!m.Success) return false;
        int rounds = m.Groups["rounds"].Success ? int.Parse(m.Groups["rounds"].Value, System.Globalization.CultureInfo.InvariantCulture) : DefaultRounds;
        var again = Compute(password, m.Groups["salt"].Value, rounds, m.Groups["rounds"].Success);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(again), Encoding.ASCII.GetBytes(hash!));
    }

    /// <summary>True when <paramref name="hash"/> has the shape of a SHA-512 crypt hash.</summary>
    public static bool IsHash(string? hash) => hash is not null && HashPattern().IsMatch(hash);

    [GeneratedRegex(@"^\$6\$(rounds=(?<rounds>[1-9][0-9]{0,8})\$)?(?<salt>[./0-9A-Za-z]{0,16})\$[./0-9A-Za-z]{86}\z")]
    private static partial Regex HashPattern();

    private static string RandomSalt()
    {
        Span<char> chars = stackalloc char[MaxSaltLength];
        for (int i = 0; i < chars.Length; i++) chars[i] = Alphabet[RandomNumberGenerator.GetInt32(Alphabet.Length)];
        return new string(chars);
    }

    private static byte[] Sha(params byte[][] parts)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
        foreach (var part in parts) h.AppendData(part);
        return h.GetHashAndReset();
    }

    private static byte[] Repeat(byte[] block, int length)
    {
        var r = new byte[length];
        for (int i = 0; i < length; i++) r[i] = block[i % block.Length];
        return r;
    }

    private static void Base64(StringBuilder sb, int w, int n)
    {
        for (int i = 0; i < n; i++) { sb.Append(Alphabet[w & 0x3f]); w >>= 6; }
    }
}
