using VmPortal.Core.Console;

namespace VmPortal.Core.Tests.Console;

public class KeyInputTests
{
    private static string Show(IEnumerable<KeyAction> a) => string.Join(" ", a);

    [Fact]
    public void Lowercase_letters_and_digits_are_plain_presses()
    {
        Assert.Equal("+KeyL -KeyL +KeyS -KeyS +Space -Space +Digit4 -Digit4 +Digit2 -Digit2",
            Show(KeyInput.TextToKeystrokes("ls 42")));
    }

    [Fact]
    public void Shifted_characters_hold_left_shift()
    {
        Assert.Equal("+ShiftLeft +KeyH -KeyH -ShiftLeft +ShiftLeft +Digit1 -Digit1 -ShiftLeft +ShiftLeft +Quote -Quote -ShiftLeft",
            Show(KeyInput.TextToKeystrokes("H!\"")));
    }

    [Fact]
    public void Newlines_and_tabs_become_enter_and_tab()
    {
        Assert.Equal("+Enter -Enter +Tab -Tab +Enter -Enter +Enter -Enter",
            Show(KeyInput.TextToKeystrokes("\n\t\r\n\r")));
    }

    [Fact]
    public void Every_printable_ascii_character_can_be_typed_and_maps_to_the_us_key()
    {
        for (char c = ' '; c <= '~'; c++)
        {
            var a = KeyInput.TextToKeystrokes(c.ToString());
            Assert.True(a.Count is 2 or 4, $"{c}: {Show(a)}");
            Assert.True(KeyboardMap.IsKnown(a[a.Count == 4 ? 1 : 0].Code));
        }
        Assert.Equal("Slash", KeyInput.TextToKeystrokes("?")[1].Code);
        Assert.Equal("Backquote", KeyInput.TextToKeystrokes("~")[1].Code);
        Assert.Equal("Digit6", KeyInput.TextToKeystrokes("^")[1].Code);
        Assert.Equal("Backslash", KeyInput.TextToKeystrokes("|")[1].Code);
    }

    [Fact]
    public void The_typed_echo_command_gives_the_expected_scancodes()
    {
        // "echo $((6*7))-ok\n" through set 1: check a few bytes that matter.
        var bytes = KeyboardMap.Bytes(KeyInput.TextToKeystrokes("e$\n"), ScancodeSet.Set1);
        Assert.Equal("12922A0585AA1C9C", Convert.ToHexString(bytes));
    }

    [Fact]
    public void Unsupported_characters_are_all_listed()
    {
        var ex = Assert.Throws<ConsoleInputException>(() => KeyInput.TextToKeystrokes("aé€b\u0001é"));
        Assert.Contains("3 character(s)", ex.Message);
        Assert.Contains("'é' (U+00E9)", ex.Message);
        Assert.Contains("'€' (U+20AC)", ex.Message);
        Assert.Contains("U+0001", ex.Message);
    }

    [Fact]
    public void Text_beyond_64_KiB_is_refused_and_64_KiB_is_accepted()
    {
        Assert.Equal(2 * KeyInput.MaxTextLength, KeyInput.TextToKeystrokes(new string('a', KeyInput.MaxTextLength)).Count);
        var ex = Assert.Throws<ConsoleInputException>(() => KeyInput.TextToKeystrokes(new string('a', KeyInput.MaxTextLength + 1)));
        Assert.Contains("too long", ex.Message);
    }

    [Fact]
    public void Ctrl_alt_del_presses_in_order_and_releases_in_reverse()
    {
        var expected = "+ControlLeft +AltLeft +Delete -Delete -AltLeft -ControlLeft";
        Assert.Equal(expected, Show(KeyInput.Combo(["ctrl", "alt", "del"])));
        Assert.Equal(expected, Show(KeyInput.Combo("ctrl-alt-del")));
        Assert.Equal(expected, Show(KeyInput.Combo("Ctrl+Alt+Delete")));
    }

    [Fact]
    public void Ctrl_alt_del_bytes_in_both_sets()
    {
        Assert.Equal("1D38E053E0D3B89D", Convert.ToHexString(KeyboardMap.Bytes(KeyInput.Combo("ctrl-alt-del"), ScancodeSet.Set1)));
        Assert.Equal("1411E071E0F071F011F014", Convert.ToHexString(KeyboardMap.Bytes(KeyInput.Combo("ctrl-alt-del"), ScancodeSet.Set2)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(12)]
    public void Ctrl_alt_fn_switches_consoles(int n)
    {
        Assert.Equal($"+ControlLeft +AltLeft +F{n} -F{n} -AltLeft -ControlLeft", Show(KeyInput.Combo($"ctrl-alt-f{n}")));
    }

    [Fact]
    public void Alt_sysrq_key_uses_the_sysrq_scancode()
    {
        Assert.Equal("+AltLeft +SysRq +KeyS -KeyS -SysRq -AltLeft", Show(KeyInput.Combo("alt-sysrq-s")));
        // PrintScreen with Alt held is what a real keyboard turns into SysRq.
        Assert.Equal("+AltLeft +SysRq +KeyB -KeyB -SysRq -AltLeft", Show(KeyInput.Combo(["alt", "printscreen", "b"])));
        Assert.Equal("38541F9FD4B8", Convert.ToHexString(KeyboardMap.Bytes(KeyInput.Combo("alt-sysrq-s"), ScancodeSet.Set1)));
    }

    [Fact]
    public void Printscreen_alone_is_the_printscreen_key()
    {
        Assert.Equal("+PrintScreen -PrintScreen", Show(KeyInput.Combo("printscreen")));
    }

    [Fact]
    public void Unknown_names_empty_and_duplicate_keys_are_refused()
    {
        var ex = Assert.Throws<ConsoleInputException>(() => KeyInput.Combo(["ctrl", "hyper", "zz"]));
        Assert.Contains("'hyper'", ex.Message);
        Assert.Contains("'zz'", ex.Message);
        Assert.Throws<ConsoleInputException>(() => KeyInput.Combo(Array.Empty<string>()));
        Assert.Throws<ConsoleInputException>(() => KeyInput.Combo("ctrl--del"));
        Assert.Contains("twice", Assert.Throws<ConsoleInputException>(() => KeyInput.Combo("ctrl-control-x")).Message);
        Assert.Throws<ConsoleInputException>(() => KeyInput.Combo(Enumerable.Repeat("a", 9).ToArray()));
    }

    [Fact]
    public void Held_keys_are_released_on_leave()
    {
        var held = new HeldKeys();
        Assert.True(held.Apply(KeyAction.Press("ControlLeft")));
        Assert.True(held.Apply(KeyAction.Press("AltLeft")));
        Assert.True(held.Apply(KeyAction.Press("AltLeft"))); // autorepeat
        Assert.True(held.Apply(KeyAction.Press("Pause")));
        Assert.True(held.Apply(KeyAction.Release("AltLeft")));
        Assert.False(held.Apply(KeyAction.Release("KeyQ"))); // never pressed: dropped
        var release = held.ReleaseAll();
        Assert.Equal("-ControlLeft", Show(release));
        Assert.Equal(0, held.Count);
        Assert.Empty(held.ReleaseAll());
    }
}
