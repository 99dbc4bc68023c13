using VmPortal.Core.Console;

namespace VmPortal.Core.Tests.Console;

public class KeyboardMapTests
{
    private static string Hex(byte[] b) => Convert.ToHexString(b);

    [Theory]
    [InlineData("KeyA", "1E", "9E", "1C", "F01C")]
    [InlineData("KeyZ", "2C", "AC", "1A", "F01A")]
    [InlineData("Digit1", "02", "82", "16", "F016")]
    [InlineData("Digit0", "0B", "8B", "45", "F045")]
    [InlineData("Enter", "1C", "9C", "5A", "F05A")]
    [InlineData("Escape", "01", "81", "76", "F076")]
    [InlineData("Space", "39", "B9", "29", "F029")]
    [InlineData("Backquote", "29", "A9", "0E", "F00E")]
    [InlineData("F1", "3B", "BB", "05", "F005")]
    [InlineData("F7", "41", "C1", "83", "F083")]
    [InlineData("F12", "58", "D8", "07", "F007")]
    [InlineData("ShiftLeft", "2A", "AA", "12", "F012")]
    [InlineData("IntlBackslash", "56", "D6", "61", "F061")]
    [InlineData("NumpadMultiply", "37", "B7", "7C", "F07C")]
    [InlineData("Numpad7", "47", "C7", "6C", "F06C")]
    public void Plain_keys_have_set1_and_set2_codes(string code, string make1, string break1, string make2, string break2)
    {
        var k = KeyboardMap.Get(code);
        Assert.Equal(make1, Hex(k.Make(ScancodeSet.Set1)));
        Assert.Equal(break1, Hex(k.Break(ScancodeSet.Set1)));
        Assert.Equal(make2, Hex(k.Make(ScancodeSet.Set2)));
        Assert.Equal(break2, Hex(k.Break(ScancodeSet.Set2)));
    }

    [Theory]
    [InlineData("ControlRight", "E01D", "E09D", "E014", "E0F014")]
    [InlineData("AltRight", "E038", "E0B8", "E011", "E0F011")]
    [InlineData("Delete", "E053", "E0D3", "E071", "E0F071")]
    [InlineData("ArrowUp", "E048", "E0C8", "E075", "E0F075")]
    [InlineData("ArrowRight", "E04D", "E0CD", "E074", "E0F074")]
    [InlineData("Home", "E047", "E0C7", "E06C", "E0F06C")]
    [InlineData("PageDown", "E051", "E0D1", "E07A", "E0F07A")]
    [InlineData("NumpadEnter", "E01C", "E09C", "E05A", "E0F05A")]
    [InlineData("NumpadDivide", "E035", "E0B5", "E04A", "E0F04A")]
    [InlineData("MetaLeft", "E05B", "E0DB", "E01F", "E0F01F")]
    [InlineData("ContextMenu", "E05D", "E0DD", "E02F", "E0F02F")]
    public void Extended_keys_carry_the_E0_prefix(string code, string make1, string break1, string make2, string break2)
    {
        var k = KeyboardMap.Get(code);
        Assert.True(k.Set1!.Value.Extended);
        Assert.Equal(make1, Hex(k.Make(ScancodeSet.Set1)));
        Assert.Equal(break1, Hex(k.Break(ScancodeSet.Set1)));
        Assert.Equal(make2, Hex(k.Make(ScancodeSet.Set2)));
        Assert.Equal(break2, Hex(k.Break(ScancodeSet.Set2)));
    }

    [Fact]
    public void PrintScreen_sends_fake_shift_sequences()
    {
        var k = KeyboardMap.Get("PrintScreen");
        Assert.Equal("E02AE037", Hex(k.Make(ScancodeSet.Set1)));
        Assert.Equal("E0B7E0AA", Hex(k.Break(ScancodeSet.Set1)));
        Assert.Equal("E012E07C", Hex(k.Make(ScancodeSet.Set2)));
        Assert.Equal("E0F07CE0F012", Hex(k.Break(ScancodeSet.Set2)));
        Assert.Null(k.Set1);
    }

    [Fact]
    public void Pause_sends_everything_on_press_and_nothing_on_release()
    {
        var k = KeyboardMap.Get("Pause");
        Assert.Equal("E11D45E19DC5", Hex(k.Make(ScancodeSet.Set1)));
        Assert.Equal("E11477E1F014F077", Hex(k.Make(ScancodeSet.Set2)));
        Assert.Empty(k.Break(ScancodeSet.Set1));
        Assert.Empty(k.Break(ScancodeSet.Set2));
        Assert.True(k.HasNoBreak);
    }

    [Fact]
    public void SysRq_is_0x54_in_set1_and_0x84_in_set2()
    {
        Assert.Equal("54", Hex(KeyboardMap.Bytes(KeyboardMap.SysRq, true, ScancodeSet.Set1)));
        Assert.Equal("D4", Hex(KeyboardMap.Bytes(KeyboardMap.SysRq, false, ScancodeSet.Set1)));
        Assert.Equal("84", Hex(KeyboardMap.Bytes(KeyboardMap.SysRq, true, ScancodeSet.Set2)));
        Assert.Equal("F084", Hex(KeyboardMap.Bytes(KeyboardMap.SysRq, false, ScancodeSet.Set2)));
    }

    [Fact]
    public void Every_required_code_is_mapped()
    {
        var required = new List<string>();
        for (char c = 'A'; c <= 'Z'; c++) required.Add("Key" + c);
        for (int d = 0; d <= 9; d++) { required.Add("Digit" + d); required.Add("Numpad" + d); }
        for (int f = 1; f <= 24; f++) required.Add("F" + f);
        required.AddRange([
            "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown", "Insert", "Delete",
            "ControlLeft", "ControlRight", "AltLeft", "AltRight", "ShiftLeft", "ShiftRight", "MetaLeft", "MetaRight",
            "ContextMenu", "CapsLock", "NumLock", "ScrollLock", "PrintScreen", "Pause", "Backquote", "Minus", "Equal",
            "BracketLeft", "BracketRight", "Backslash", "IntlBackslash", "Semicolon", "Quote", "Comma", "Period",
            "Slash", "Enter", "Escape", "Tab", "Backspace", "Space", "NumpadEnter", "NumpadDivide", "NumpadMultiply",
            "NumpadSubtract", "NumpadAdd", "NumpadDecimal"]);
        var missing = required.Where(c => !KeyboardMap.IsKnown(c)).ToList();
        Assert.Empty(missing);
    }

    [Theory]
    [InlineData(ScancodeSet.Set1)]
    [InlineData(ScancodeSet.Set2)]
    public void No_two_keys_share_a_scancode(ScancodeSet set)
    {
        // OSLeft/OSRight are legacy aliases of MetaLeft/MetaRight.
        var byMake = KeyboardMap.Codes.Where(c => c is not ("OSLeft" or "OSRight"))
            .GroupBy(c => Hex(KeyboardMap.Get(c).Make(set)))
            .Where(g => g.Count() > 1)
            .Select(g => string.Join("/", g))
            .ToList();
        Assert.Empty(byMake);
    }

    [Fact]
    public void Set1_break_is_make_with_bit7_for_every_single_code_key()
    {
        foreach (var code in KeyboardMap.Codes)
        {
            var k = KeyboardMap.Get(code);
            if (k.Set1 is not { } s) continue;
            Assert.True(s.Code < 0x80, $"{code}: set-1 make code {s} has bit 7 set");
            var mk = k.Make(ScancodeSet.Set1);
            var br = k.Break(ScancodeSet.Set1);
            Assert.Equal(mk.Length, br.Length);
            Assert.Equal(mk[^1] | 0x80, br[^1]);
        }
    }

    [Theory]
    [InlineData("keya")]
    [InlineData("Unidentified")]
    [InlineData("")]
    [InlineData("KeyÄ")]
    public void Unknown_codes_are_rejected_with_a_clear_error(string code)
    {
        var ex = Assert.Throws<ConsoleInputException>(() => KeyboardMap.Get(code));
        Assert.Contains("Unknown key code", ex.Message);
        Assert.Contains("KeyboardEvent.code", ex.Message);
    }

    [Fact]
    public void Returned_arrays_are_copies()
    {
        var k = KeyboardMap.Get("KeyA");
        k.Make(ScancodeSet.Set1)[0] = 0xFF;
        Assert.Equal(0x1E, k.Make(ScancodeSet.Set1)[0]);
    }
}

public class KeyboardMapSet2CodeTests
{
    [Theory]
    [InlineData("KeyA", true, new ushort[] { 0x1C })]
    [InlineData("KeyA", false, new ushort[] { 0x1C })]
    [InlineData("ArrowUp", true, new ushort[] { 0xE075 })]
    [InlineData("ControlRight", false, new ushort[] { 0xE014 })]
    [InlineData("F7", true, new ushort[] { 0x83 })]
    [InlineData("SysRq", true, new ushort[] { 0x84 })]
    [InlineData("PrintScreen", true, new ushort[] { 0xE012, 0xE07C })]
    [InlineData("PrintScreen", false, new ushort[] { 0xE07C, 0xE012 })]
    public void Keys_become_packed_set2_make_codes(string code, bool down, ushort[] expected)
    {
        Assert.Equal(expected, KeyboardMap.Set2Codes(code, down));
    }

    [Fact]
    public void Every_key_but_pause_has_packed_set2_codes_that_rebuild_its_byte_sequence()
    {
        foreach (var code in KeyboardMap.Codes.Where(c => c != "Pause"))
        {
            // Expanding the packed codes the way a PS/2 keyboard would must give the table's make bytes.
            var bytes = KeyboardMap.Set2Codes(code, true)
                .SelectMany(c => c > 0xFF ? new[] { (byte)(c >> 8), (byte)c } : new[] { (byte)c }).ToArray();
            Assert.Equal(KeyboardMap.Get(code).Make(ScancodeSet.Set2), bytes);
        }
        Assert.Throws<ConsoleInputException>(() => KeyboardMap.Set2Codes("Pause", true));
        Assert.Throws<ConsoleInputException>(() => KeyboardMap.Set2Codes("NoSuchKey", true));
    }
}
