namespace VmPortal.Network.Tests;

public class VirtualSwitchTests
{
    private static readonly byte[] Bcast = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };

    [Fact]
    public void UnknownDestinationsFloodToEveryOtherPortThenTheSwitchLearns()
    {
        var sw = new VirtualSwitch("t");
        var (a, b, c) = (sw.Connect("a"), sw.Connect("b"), sw.Connect("c"));
        a.Send(Frames.Ethernet(Frames.Mac(2), Frames.Mac(1), fill: 1)); // B's MAC is not known yet: flood
        Assert.Empty(Frames.Drain(a));
        Assert.Single(Frames.Drain(b));
        Assert.Single(Frames.Drain(c));

        b.Send(Frames.Ethernet(Frames.Mac(1), Frames.Mac(2), fill: 2)); // A was learned: only A gets it
        Assert.Equal(2, Assert.Single(Frames.Drain(a))[20]);
        Assert.Empty(Frames.Drain(c));

        a.Send(Frames.Ethernet(Frames.Mac(2), Frames.Mac(1), fill: 3)); // now B is known too
        Assert.Single(Frames.Drain(b));
        Assert.Empty(Frames.Drain(c));
        Assert.Equal("a", sw.MacTable["52:54:00:00:00:01"]);
        Assert.Equal("b", sw.MacTable["52:54:00:00:00:02"]);

        a.Send(Frames.Ethernet(Bcast, Frames.Mac(1)));
        Assert.Single(Frames.Drain(b));
        Assert.Single(Frames.Drain(c));
        Assert.Empty(Frames.Drain(a));
        Assert.Equal(3, a.Counters.FramesIn);
        Assert.Equal(3, b.Counters.FramesOut);
    }

    [Fact]
    public void LearnedAddressesAgeOutAndMoveWithTheirOwner()
    {
        var time = new ManualTime();
        var sw = new VirtualSwitch("t", time) { MacAgeing = TimeSpan.FromSeconds(30) };
        var (a, b, c) = (sw.Connect("a"), sw.Connect("b"), sw.Connect("c"));
        b.Send(Frames.Ethernet(Bcast, Frames.Mac(2)));
        Frames.Drain(a); Frames.Drain(c);
        a.Send(Frames.Ethernet(Frames.Mac(2), Frames.Mac(1)));
        Assert.Empty(Frames.Drain(c));
        time.Advance(TimeSpan.FromSeconds(31));
        a.Send(Frames.Ethernet(Frames.Mac(2), Frames.Mac(1)));
        Assert.Single(Frames.Drain(c)); // aged out: flooded again
        Frames.Drain(b);
        c.Send(Frames.Ethernet(Bcast, Frames.Mac(2))); // the MAC moved to port c
        Frames.Drain(a); Frames.Drain(b);
        a.Send(Frames.Ethernet(Frames.Mac(2), Frames.Mac(1)));
        Assert.Single(Frames.Drain(c));
        Assert.Empty(Frames.Drain(b));
    }

    [Fact]
    public void SwitchesAreIsolatedFromEachOther()
    {
        var (one, two) = (new VirtualSwitch("one"), new VirtualSwitch("two"));
        var (a, b) = (one.Connect("a"), one.Connect("b"));
        var x = two.Connect("x");
        a.Send(Frames.Ethernet(Bcast, Frames.Mac(1)));
        Assert.Single(Frames.Drain(b));
        Assert.Empty(Frames.Drain(x));
    }

    [Fact]
    public void QueuesAreBoundedAndDropsAreCounted()
    {
        var sw = new VirtualSwitch("t") { QueueLimitPerSource = 8 };
        var (a, b) = (sw.Connect("a"), sw.Connect("b"));
        int queued = 0;
        b.FrameQueued = () => queued++;
        for (int i = 0; i < 20; i++) a.Send(Frames.Ethernet(Bcast, Frames.Mac(1), fill: (byte)i));
        Assert.Equal(8, b.Waiting);
        Assert.Equal(12, b.Counters.Dropped);
        Assert.Equal(8, queued);
        var got = Frames.Drain(b);
        Assert.Equal(Enumerable.Range(0, 8).Select(i => (byte)i), got.Select(f => f[20])); // the oldest are kept, in order
    }

    [Fact]
    public void AFloodingGuestCannotStarveTheOthers()
    {
        var sw = new VirtualSwitch("t") { QueueLimitPerSource = 16 };
        var (flooder, quiet, victim) = (sw.Connect("flooder"), sw.Connect("quiet"), sw.Connect("victim"));
        // The victim is paused (takes nothing) while a guest floods broadcasts at it.
        for (int i = 0; i < 10_000; i++) flooder.Send(Frames.Ethernet(Bcast, Frames.Mac(1)));
        quiet.Send(Frames.Ethernet(Bcast, Frames.Mac(2), fill: 0x42));
        Assert.Equal(10_000 - 16, victim.Counters.Dropped);
        // When the victim reads, the quiet guest's frame is served right after the first flood frame.
        var first = Frames.Drain(victim).Take(2).ToList();
        Assert.Contains(first, f => f[20] == 0x42);
    }

    [Fact]
    public void RuntOversizedAndGarbageFramesAreCountedAndDropped()
    {
        var sw = new VirtualSwitch("t");
        var (a, b) = (sw.Connect("a"), sw.Connect("b"));
        a.Send(new byte[10]);                                          // runt
        a.Send(Frames.Ethernet(Bcast, Frames.Mac(1), length: 4000));   // oversized
        a.Send(Frames.Ethernet(Bcast, Bcast));                         // multicast source
        a.Send(Frames.Ethernet(Bcast, new byte[6]));                   // zero source
        Assert.Equal(4, a.Counters.Errors);
        Assert.Equal(0, a.Counters.FramesIn);
        Assert.Empty(Frames.Drain(b));
        Assert.Empty(sw.MacTable);
    }

    [Fact]
    public void ADisconnectedPortGetsNothingAndIsForgotten()
    {
        var sw = new VirtualSwitch("t");
        var (a, b) = (sw.Connect("a"), sw.Connect("b"));
        b.Send(Frames.Ethernet(Bcast, Frames.Mac(2)));
        sw.Disconnect(b);
        a.Send(Frames.Ethernet(Frames.Mac(2), Frames.Mac(1)));
        Assert.Equal(0, b.Waiting);
        Assert.DoesNotContain("52:54:00:00:00:02", sw.MacTable.Keys);
        Assert.Single(sw.Ports);
    }
}
