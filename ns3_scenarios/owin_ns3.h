// owin-cosim's C++ side inside ns-3, compiled at run time by cppyy (cppyy.cppdef).
//
// - ChunkSender: an application on a device that sends the chunks handed to it, in
//   order, over TCP (a byte stream, BulkSend-like) or UDP (paced datagrams, each with a
//   ChunkHeader, and an application-level selective-repeat ARQ: the last datagram of a
//   chunk asks the sink for a report, the sender sends again the segments the report
//   lists as missing, and asks again when no report comes in time).
// - ChunkSink: an application at the edge server, one per device, that turns received
//   bytes into per-chunk deliveries (first and last byte time, bytes, bytes sent again)
//   and stops the simulator at each delivery, so the coordinator can react before going
//   on. A chunk is delivered only when every one of its bytes has arrived.
// - UlShareScheduler: an LTE MAC scheduler that wraps ns-3's round-robin scheduler and
//   re-partitions the uplink resource blocks of every TTI among the scheduled UEs in
//   proportion to the coordinator's weights (contiguous blocks, MCS from each UE's own
//   PUSCH SINR, transport block size from the AMC).
//
// Everything here is owin-cosim's own code against ns-3's public headers.

#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/lte-module.h"
#include "ns3/network-module.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <vector>

namespace owin
{
using namespace ns3;

/// One delivered chunk, as reported to the coordinator.
struct ChunkDelivery
{
    uint32_t device;
    uint32_t chunk;
    uint64_t nbytes;
    double submit;
    double first;
    double last;
    /// UDP: bytes sent again because they did not arrive (0 over TCP, whose own
    /// retransmissions stay inside ns-3's TCP).
    uint64_t lost;
    /// Distinct bytes of the chunk that arrived: always ``nbytes`` (checked by the worker).
    uint64_t received;
};

/// A UDP chunk whose sender gave up: its requests for a report went unanswered.
struct ChunkFailure
{
    uint32_t device;
    uint32_t chunk;
    uint32_t requests;
};

/// Shared state between Python and the applications of one simulation.
struct Hub
{
    std::vector<ChunkDelivery> done;
    std::vector<ChunkFailure> failed;
    bool stopOnDelivery = true;
    uint64_t bytesReceived = 0;

    void Clear()
    {
        done.clear();
        failed.clear();
    }
};

inline Hub&
TheHub()
{
    static Hub hub;
    return hub;
}

inline void
StopNow()
{
    Simulator::Stop();
}

/// Schedule a stop at absolute time ``t`` (seconds); returns the event to cancel it.
inline EventId
ScheduleStopAt(double t)
{
    Time delay = Seconds(t) - Simulator::Now();
    if (delay.IsNegative())
    {
        delay = Time(0);
    }
    return Simulator::Schedule(delay, &StopNow);
}

inline void
InjectedFault()
{
    NS_FATAL_ERROR("owin-cosim fault injection (OWIN_COSIM_NS3_FAULT)");
}

/// Test hook: an ns-3 fatal error at absolute time ``t`` (see the worker's docstring).
inline void
ScheduleFaultAt(double t)
{
    Simulator::Schedule(Seconds(t) - Simulator::Now(), &InjectedFault);
}

inline void
CancelEvent(EventId ev)
{
    Simulator::Cancel(ev);
}

/// The header of owin's UDP datagrams, both ways. DATA (device to server): a segment of
/// a chunk, which may ask for a report. REPORT (server to device): the segments of a
/// chunk still missing, as a bitmap in the payload (bit i: bytes [i, i + 1) x segment);
/// an empty payload means the chunk is complete.
class ChunkHeader : public Header
{
  public:
    static constexpr uint8_t kData = 0;
    static constexpr uint8_t kReport = 1;

    static TypeId GetTypeId()
    {
        static TypeId tid = TypeId("owin::ChunkHeader")
                                .SetParent<Header>()
                                .SetGroupName("Owin")
                                .AddConstructor<ChunkHeader>();
        return tid;
    }

    TypeId GetInstanceTypeId() const override
    {
        return GetTypeId();
    }

    uint32_t GetSerializedSize() const override
    {
        return 1 + 4 + 8 + 4;
    }

    void Serialize(Buffer::Iterator i) const override
    {
        i.WriteU8(kind);
        i.WriteHtonU32(chunk);
        i.WriteHtonU64(offset);
        i.WriteHtonU32(request);
    }

    uint32_t Deserialize(Buffer::Iterator start) override
    {
        Buffer::Iterator i = start;
        kind = i.ReadU8();
        chunk = i.ReadNtohU32();
        offset = i.ReadNtohU64();
        request = i.ReadNtohU32();
        return GetSerializedSize();
    }

    void Print(std::ostream& os) const override
    {
        os << (kind == kData ? "data" : "report") << " chunk=" << chunk << " offset=" << offset
           << " request=" << request;
    }

    uint8_t kind = kData;
    uint32_t chunk = 0;
    /// DATA: offset of the segment's first byte in its chunk.
    uint64_t offset = 0;
    /// DATA: 0, or the id of a request for a report; REPORT: the request it answers.
    uint32_t request = 0;
};

class ChunkSink : public Application
{
  public:
    static TypeId GetTypeId()
    {
        static TypeId tid =
            TypeId("owin::ChunkSink").SetParent<Application>().SetGroupName("Owin");
        return tid;
    }

    void Configure(uint32_t device, uint16_t port, bool tcp, uint32_t segment)
    {
        m_device = device;
        m_port = port;
        m_tcp = tcp;
        m_segment = segment;
    }

    uint32_t DeviceIndex() const
    {
        return m_device;
    }

    /// UDP bookkeeping (no effect on the simulation): the sender sent ``n`` bytes of
    /// ``chunk`` again; reported with the chunk's delivery.
    void NoteResent(uint32_t chunk, uint64_t n)
    {
        m_resent[chunk] += n;
    }

    /// A chunk will come, after those already expected (called at submission).
    void Expect(uint32_t chunk, uint64_t nbytes, double submit)
    {
        if (nbytes == 0)
        {
            return; // a warm-up call (see Warm-up in ns3_worker.py); chunks are never empty
        }
        if (!m_tcp)
        {
            Incoming in;
            in.nbytes = nbytes;
            in.submit = submit;
            in.got.assign((nbytes + m_segment - 1) / m_segment, false);
            m_incoming[chunk] = in;
            return;
        }
        Pending p;
        p.chunk = chunk;
        p.nbytes = nbytes;
        p.submit = submit;
        p.start = m_expectedEnd;
        m_expectedEnd += nbytes;
        m_pending.push_back(p);
    }

  private:
    /// TCP: a chunk expected on the byte stream, from offset ``start``.
    struct Pending
    {
        uint32_t chunk;
        uint64_t nbytes;
        double submit;
        uint64_t start;
        double first = -1.0;
    };

    /// UDP: a chunk not complete yet, with the segments that arrived.
    struct Incoming
    {
        uint64_t nbytes = 0;
        double submit = 0.0;
        double first = -1.0;
        std::vector<bool> got;
        size_t segments = 0;
        uint64_t received = 0;
    };

    void StartApplication() override
    {
        TypeId tid = m_tcp ? TcpSocketFactory::GetTypeId() : UdpSocketFactory::GetTypeId();
        m_socket = Socket::CreateSocket(GetNode(), tid);
        m_socket->Bind(InetSocketAddress(Ipv4Address::GetAny(), m_port));
        m_socket->SetRecvCallback(MakeCallback(&ChunkSink::HandleRead, this));
        if (m_tcp)
        {
            m_socket->Listen();
            m_socket->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
                                        MakeCallback(&ChunkSink::HandleAccept, this));
        }
    }

    void StopApplication() override
    {
        if (m_socket)
        {
            m_socket->Close();
        }
        for (auto& s : m_accepted)
        {
            s->Close();
        }
    }

    void HandleAccept(Ptr<Socket> s, const Address&)
    {
        s->SetRecvCallback(MakeCallback(&ChunkSink::HandleRead, this));
        m_accepted.push_back(s);
    }

    void HandleRead(Ptr<Socket> socket)
    {
        Ptr<Packet> packet;
        Address from;
        while ((packet = socket->RecvFrom(from)))
        {
            if (packet->GetSize() == 0)
            {
                break;
            }
            if (m_tcp)
            {
                OnStreamBytes(packet->GetSize());
            }
            else
            {
                ChunkHeader h;
                packet->RemoveHeader(h);
                if (h.kind == ChunkHeader::kData)
                {
                    OnDatagram(socket, from, h, packet->GetSize());
                }
            }
        }
    }

    void OnStreamBytes(uint32_t n)
    {
        const double now = Simulator::Now().GetSeconds();
        m_rx += n;
        TheHub().bytesReceived += n;
        while (!m_pending.empty())
        {
            Pending& p = m_pending.front();
            if (p.first < 0 && m_rx > p.start)
            {
                p.first = now;
            }
            if (m_rx < p.start + p.nbytes)
            {
                break;
            }
            Deliver(p.chunk, p.nbytes, p.submit, p.first, now, 0, p.nbytes);
            m_pending.pop_front();
        }
    }

    void OnDatagram(Ptr<Socket> socket, const Address& from, const ChunkHeader& h,
                    uint32_t payload)
    {
        const double now = Simulator::Now().GetSeconds();
        TheHub().bytesReceived += payload;
        auto it = m_incoming.find(h.chunk);
        if (it != m_incoming.end() && payload > 0)
        {
            Incoming& in = it->second;
            const uint64_t seg = h.offset / m_segment;
            if (in.first < 0)
            {
                in.first = now;
            }
            if (seg < in.got.size() && !in.got[seg])
            {
                in.got[seg] = true;
                in.segments += 1;
                in.received += payload;
            }
            if (in.segments == in.got.size())
            {
                Deliver(h.chunk, in.nbytes, in.submit, in.first, now, m_resent[h.chunk],
                        in.received);
                m_incoming.erase(it);
                m_complete.insert(h.chunk);
            }
        }
        if (h.request != 0)
        {
            Report(socket, from, h.chunk, h.request);
        }
    }

    /// UDP: answer a request for a report on ``chunk`` (also after its delivery, in
    /// case the report that said so was lost).
    void Report(Ptr<Socket> socket, const Address& to, uint32_t chunk, uint32_t request)
    {
        std::vector<uint8_t> bits;
        auto it = m_incoming.find(chunk);
        if (it != m_incoming.end())
        {
            const std::vector<bool>& got = it->second.got;
            bits.assign((got.size() + 7) / 8, 0);
            for (size_t i = 0; i < got.size(); ++i)
            {
                if (!got[i])
                {
                    bits[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
                }
            }
        }
        else if (m_complete.count(chunk) == 0)
        {
            return; // a chunk never expected: nothing to report
        }
        Ptr<Packet> p = bits.empty()
                            ? Create<Packet>()
                            : Create<Packet>(bits.data(), static_cast<uint32_t>(bits.size()));
        ChunkHeader h;
        h.kind = ChunkHeader::kReport;
        h.chunk = chunk;
        h.request = request;
        p->AddHeader(h);
        socket->SendTo(p, 0, to);
    }

    void Deliver(uint32_t chunk, uint64_t nbytes, double submit, double first, double now,
                 uint64_t lost, uint64_t received)
    {
        ChunkDelivery d{m_device, chunk, nbytes, submit, first < 0 ? now : first, now,
                        lost,     received};
        TheHub().done.push_back(d);
        if (TheHub().stopOnDelivery)
        {
            Simulator::Stop();
        }
    }

    uint32_t m_device = 0;
    uint16_t m_port = 0;
    bool m_tcp = true;
    Ptr<Socket> m_socket;
    std::vector<Ptr<Socket>> m_accepted;
    std::deque<Pending> m_pending;
    uint64_t m_expectedEnd = 0;
    uint64_t m_rx = 0;
    uint32_t m_segment = 1448;
    std::map<uint32_t, Incoming> m_incoming;
    std::set<uint32_t> m_complete;
    std::map<uint32_t, uint64_t> m_resent;
};

class ChunkSender : public Application
{
  public:
    static TypeId GetTypeId()
    {
        static TypeId tid =
            TypeId("owin::ChunkSender").SetParent<Application>().SetGroupName("Owin");
        return tid;
    }

    void Configure(Address peer, bool tcp, uint32_t segment, double udpRateBps,
                   double udpReportTimeout, uint32_t udpMaxRequests, Ptr<ChunkSink> sink)
    {
        m_peer = peer;
        m_tcp = tcp;
        m_segment = segment;
        m_udpRate = udpRateBps;
        m_udpReportTimeout = udpReportTimeout;
        m_udpMaxRequests = udpMaxRequests;
        m_sink = sink;
    }

    /// Hand a chunk to the transport now (after the chunks already handed over).
    void Release(uint32_t chunk, uint64_t nbytes)
    {
        m_queue.push_back({chunk, nbytes, 0});
        m_released += nbytes;
        Pump();
    }

    uint64_t ReleasedBytes() const
    {
        return m_released;
    }

    /// Connected (TCP) or able to send (UDP).
    bool IsReady() const
    {
        return m_connected;
    }

  private:
    struct Item
    {
        uint32_t chunk;
        uint64_t nbytes;
        uint64_t sent;
    };

    /// UDP: a datagram that goes out before new data: a segment sent again, or a bare
    /// request for a report (``length`` 0).
    struct Resend
    {
        uint32_t chunk;
        uint64_t offset;
        uint32_t length;
        uint32_t request;
    };

    /// UDP: a chunk sent in full at least once, not yet reported complete.
    struct Awaiting
    {
        uint64_t nbytes = 0;
        /// The request that ended the latest round of segments: older reports are stale.
        uint32_t roundRequest = 0;
        /// The latest request (the timer answers only this one).
        uint32_t lastRequest = 0;
        /// Requests in a row without an answer.
        uint32_t unanswered = 0;
        EventId timer;
    };

    void StartApplication() override
    {
        TypeId tid = m_tcp ? TcpSocketFactory::GetTypeId() : UdpSocketFactory::GetTypeId();
        m_socket = Socket::CreateSocket(GetNode(), tid);
        m_socket->Bind();
        m_socket->Connect(m_peer);
        if (m_tcp)
        {
            m_socket->SetConnectCallback(MakeCallback(&ChunkSender::Connected, this),
                                         MakeCallback(&ChunkSender::ConnectFailed, this));
            m_socket->SetSendCallback(MakeCallback(&ChunkSender::SpaceAvailable, this));
        }
        else
        {
            m_socket->SetRecvCallback(MakeCallback(&ChunkSender::HandleReport, this));
            m_connected = true;
        }
        Pump();
    }

    void StopApplication() override
    {
        Simulator::Cancel(m_next);
        if (m_socket)
        {
            m_socket->Close();
        }
    }

    void Connected(Ptr<Socket>)
    {
        m_connected = true;
        Pump();
    }

    void ConnectFailed(Ptr<Socket>)
    {
        NS_FATAL_ERROR("owin ChunkSender: TCP connection failed");
    }

    void SpaceAvailable(Ptr<Socket>, uint32_t)
    {
        Pump();
    }

    void Pump()
    {
        if (!m_connected || !m_socket)
        {
            return;
        }
        if (m_tcp)
        {
            while (!m_queue.empty())
            {
                Item& it = m_queue.front();
                uint32_t room = m_socket->GetTxAvailable();
                uint64_t left = it.nbytes - it.sent;
                uint32_t n = static_cast<uint32_t>(std::min<uint64_t>({left, m_segment, room}));
                if (n == 0)
                {
                    return;
                }
                int sent = m_socket->Send(Create<Packet>(n));
                if (sent <= 0)
                {
                    return;
                }
                it.sent += static_cast<uint64_t>(sent);
                if (it.sent >= it.nbytes)
                {
                    m_queue.pop_front();
                }
            }
        }
        else if (!m_next.IsPending())
        {
            // Keep the pacing also across idle gaps (a chunk released, resends queued).
            const Time wait = m_earliest - Simulator::Now();
            if (wait.IsStrictlyPositive())
            {
                m_next = Simulator::Schedule(wait, &ChunkSender::SendDatagram, this);
            }
            else
            {
                SendDatagram();
            }
        }
    }

    /// UDP: send the next datagram (resends first, then new data), paced at the rate.
    void SendDatagram()
    {
        ChunkHeader h;
        uint32_t n = 0;
        if (!m_resend.empty())
        {
            const Resend r = m_resend.front();
            m_resend.pop_front();
            h.chunk = r.chunk;
            h.offset = r.offset;
            h.request = r.request;
            n = r.length;
            if (n > 0)
            {
                m_sink->NoteResent(r.chunk, n);
            }
        }
        else if (!m_queue.empty())
        {
            Item& it = m_queue.front();
            n = static_cast<uint32_t>(std::min<uint64_t>(it.nbytes - it.sent, m_segment));
            h.chunk = it.chunk;
            h.offset = it.sent;
            it.sent += n;
            if (it.sent >= it.nbytes)
            {
                // The chunk's last segment asks for the first report.
                h.request = m_nextRequest++;
                Awaiting a;
                a.nbytes = it.nbytes;
                a.roundRequest = a.lastRequest = h.request;
                m_awaiting[it.chunk] = a;
                m_queue.pop_front();
            }
        }
        else
        {
            return;
        }
        Ptr<Packet> p = Create<Packet>(n);
        p->AddHeader(h);
        m_socket->Send(p);
        auto awaiting = h.request != 0 ? m_awaiting.find(h.chunk) : m_awaiting.end();
        if (awaiting != m_awaiting.end())
        {
            Awaiting& a = awaiting->second;
            Simulator::Cancel(a.timer);
            a.timer = Simulator::Schedule(Seconds(m_udpReportTimeout),
                                          &ChunkSender::ReportTimedOut,
                                          this,
                                          h.chunk,
                                          h.request);
        }
        const Time gap = Seconds((n + h.GetSerializedSize()) * 8.0 / m_udpRate);
        m_earliest = Simulator::Now() + gap;
        if (!m_resend.empty() || !m_queue.empty())
        {
            m_next = Simulator::Schedule(gap, &ChunkSender::SendDatagram, this);
        }
    }

    /// UDP: no report came for the latest request on ``chunk``: ask again, or give up.
    void ReportTimedOut(uint32_t chunk, uint32_t request)
    {
        auto it = m_awaiting.find(chunk);
        if (it == m_awaiting.end() || it->second.lastRequest != request)
        {
            return; // answered, or a newer request is out
        }
        Awaiting& a = it->second;
        a.unanswered += 1;
        if (a.unanswered >= m_udpMaxRequests)
        {
            TheHub().failed.push_back({m_sink->DeviceIndex(), chunk, a.unanswered});
            Simulator::Stop();
            return;
        }
        a.lastRequest = m_nextRequest++;
        m_resend.push_back({chunk, 0, 0, a.lastRequest});
        Pump();
    }

    /// UDP: a report from the sink: the chunk is complete, or resend what it lists.
    void HandleReport(Ptr<Socket> socket)
    {
        Ptr<Packet> packet;
        while ((packet = socket->Recv()))
        {
            ChunkHeader h;
            if (packet->GetSize() < h.GetSerializedSize())
            {
                continue;
            }
            packet->RemoveHeader(h);
            auto it = m_awaiting.find(h.chunk);
            if (h.kind != ChunkHeader::kReport || it == m_awaiting.end() ||
                h.request < it->second.roundRequest)
            {
                continue; // done already, or sent before the latest resends went out
            }
            Awaiting& a = it->second;
            a.unanswered = 0;
            Simulator::Cancel(a.timer);
            DropResends(h.chunk);
            std::vector<uint8_t> bits(packet->GetSize());
            if (!bits.empty())
            {
                packet->CopyData(bits.data(), static_cast<uint32_t>(bits.size()));
            }
            std::vector<Resend> missing;
            for (uint64_t i = 0; i < bits.size() * 8ULL && i * m_segment < a.nbytes; ++i)
            {
                if ((bits[i / 8] >> (i % 8)) & 1u)
                {
                    const uint64_t offset = i * m_segment;
                    const auto length =
                        static_cast<uint32_t>(std::min<uint64_t>(m_segment, a.nbytes - offset));
                    missing.push_back({h.chunk, offset, length, 0});
                }
            }
            if (missing.empty())
            {
                m_awaiting.erase(it);
                continue;
            }
            // The round's last resend asks for the next report; it arms the timer when it
            // leaves (the round may wait behind other chunks' resends).
            missing.back().request = m_nextRequest++;
            a.roundRequest = a.lastRequest = missing.back().request;
            m_resend.insert(m_resend.end(), missing.begin(), missing.end());
            Pump();
        }
    }

    void DropResends(uint32_t chunk)
    {
        m_resend.erase(std::remove_if(m_resend.begin(),
                                      m_resend.end(),
                                      [chunk](const Resend& r) { return r.chunk == chunk; }),
                       m_resend.end());
    }

    Address m_peer;
    bool m_tcp = true;
    uint32_t m_segment = 1448;
    double m_udpRate = 50e6;
    double m_udpReportTimeout = 0.2;
    uint32_t m_udpMaxRequests = 25;
    Ptr<ChunkSink> m_sink;
    Ptr<Socket> m_socket;
    bool m_connected = false;
    std::deque<Item> m_queue;
    uint64_t m_released = 0;
    EventId m_next;
    Time m_earliest;
    std::deque<Resend> m_resend;
    std::map<uint32_t, Awaiting> m_awaiting;
    uint32_t m_nextRequest = 1;
};

inline void
ReleaseChunk(Ptr<ChunkSender> s, uint32_t chunk, uint64_t nbytes)
{
    s->Release(chunk, nbytes);
}

/// Release a chunk to its sender at absolute time ``t`` (seconds).
inline void
ReleaseAt(Ptr<ChunkSender> s, double t, uint32_t chunk, uint64_t nbytes)
{
    if (nbytes == 0)
    {
        return; // a warm-up call; chunks are never empty
    }
    Time delay = Seconds(t) - Simulator::Now();
    if (delay.IsNegative())
    {
        delay = Time(0);
    }
    Simulator::Schedule(delay, &ReleaseChunk, s, chunk, nbytes);
}

// ---- LTE: an uplink scheduler that follows the coordinator's weights ------------------

/// Weights by RNTI, set from Python; a UE without an entry weighs 1.
inline std::map<uint16_t, double>&
UlWeights()
{
    static std::map<uint16_t, double> w;
    return w;
}

inline void
SetUlWeight(uint16_t rnti, double weight)
{
    UlWeights()[rnti] = weight;
}

inline void
ClearUlWeights()
{
    UlWeights().clear();
}

class UlShareScheduler : public FfMacScheduler
{
  public:
    /// RBs every granted UE keeps whatever its weight (ns-3's schedulers use 3).
    static constexpr int kMinRbs = 3;

    static TypeId GetTypeId()
    {
        static TypeId tid = TypeId("owin::UlShareScheduler")
                                .SetParent<FfMacScheduler>()
                                .SetGroupName("Owin")
                                .AddConstructor<UlShareScheduler>();
        return tid;
    }

    UlShareScheduler()
        : m_user(nullptr),
          m_proxyUser(this),
          m_proxyProvider(this)
    {
        m_inner = CreateObject<RrFfMacScheduler>();
        m_inner->SetAttribute("HarqEnabled", BooleanValue(false));
        m_amc = CreateObject<LteAmc>();
    }

    void SetFfMacCschedSapUser(FfMacCschedSapUser* s) override
    {
        m_inner->SetFfMacCschedSapUser(s);
    }

    void SetFfMacSchedSapUser(FfMacSchedSapUser* s) override
    {
        m_user = s;
        m_inner->SetFfMacSchedSapUser(&m_proxyUser);
    }

    FfMacCschedSapProvider* GetFfMacCschedSapProvider() override
    {
        return m_inner->GetFfMacCschedSapProvider();
    }

    FfMacSchedSapProvider* GetFfMacSchedSapProvider() override
    {
        return &m_proxyProvider;
    }

    void SetLteFfrSapProvider(LteFfrSapProvider* s) override
    {
        m_inner->SetLteFfrSapProvider(s);
    }

    LteFfrSapUser* GetLteFfrSapUser() override
    {
        return m_inner->GetLteFfrSapUser();
    }

    /// RBs per RNTI in the last reshaped TTI (for radio-usage reports).
    std::map<uint16_t, uint32_t> lastRbs;

  protected:
    void DoInitialize() override
    {
        m_inner->Initialize();
        FfMacScheduler::DoInitialize();
    }

    void DoDispose() override
    {
        m_inner->Dispose();
        m_inner = nullptr;
        FfMacScheduler::DoDispose();
    }

  private:
    class ProxyUser : public FfMacSchedSapUser
    {
      public:
        explicit ProxyUser(UlShareScheduler* owner)
            : m_owner(owner)
        {
        }

        void SchedDlConfigInd(const SchedDlConfigIndParameters& p) override
        {
            m_owner->m_user->SchedDlConfigInd(p);
        }

        void SchedUlConfigInd(const SchedUlConfigIndParameters& p) override
        {
            m_owner->Reshape(p);
        }

      private:
        UlShareScheduler* m_owner;
    };

    class ProxyProvider : public FfMacSchedSapProvider
    {
      public:
        explicit ProxyProvider(UlShareScheduler* owner)
            : m_owner(owner)
        {
        }

        FfMacSchedSapProvider* In()
        {
            return m_owner->m_inner->GetFfMacSchedSapProvider();
        }

        void SchedDlRlcBufferReq(const SchedDlRlcBufferReqParameters& p) override
        {
            In()->SchedDlRlcBufferReq(p);
        }

        void SchedDlPagingBufferReq(const SchedDlPagingBufferReqParameters& p) override
        {
            In()->SchedDlPagingBufferReq(p);
        }

        void SchedDlMacBufferReq(const SchedDlMacBufferReqParameters& p) override
        {
            In()->SchedDlMacBufferReq(p);
        }

        void SchedDlTriggerReq(const SchedDlTriggerReqParameters& p) override
        {
            In()->SchedDlTriggerReq(p);
        }

        void SchedDlRachInfoReq(const SchedDlRachInfoReqParameters& p) override
        {
            In()->SchedDlRachInfoReq(p);
        }

        void SchedDlCqiInfoReq(const SchedDlCqiInfoReqParameters& p) override
        {
            In()->SchedDlCqiInfoReq(p);
        }

        void SchedUlTriggerReq(const SchedUlTriggerReqParameters& p) override
        {
            m_owner->m_sfnSf = p.m_sfnSf;
            In()->SchedUlTriggerReq(p);
        }

        void SchedUlNoiseInterferenceReq(const SchedUlNoiseInterferenceReqParameters& p) override
        {
            In()->SchedUlNoiseInterferenceReq(p);
        }

        void SchedUlSrInfoReq(const SchedUlSrInfoReqParameters& p) override
        {
            In()->SchedUlSrInfoReq(p);
        }

        void SchedUlMacCtrlInfoReq(const SchedUlMacCtrlInfoReqParameters& p) override
        {
            In()->SchedUlMacCtrlInfoReq(p);
        }

        void SchedUlCqiInfoReq(const SchedUlCqiInfoReqParameters& p) override
        {
            m_owner->LearnSinr(p);
            In()->SchedUlCqiInfoReq(p);
        }

      private:
        UlShareScheduler* m_owner;
    };

    /// Re-partition the round-robin scheduler's uplink grants by weight.
    void Reshape(const FfMacSchedSapUser::SchedUlConfigIndParameters& in)
    {
        FfMacSchedSapUser::SchedUlConfigIndParameters out = in;
        std::vector<UlDciListElement_s>& dcis = out.m_dciList;
        lastRbs.clear();
        if (!dcis.empty())
        {
            int total = 0;
            int start = 255;
            std::vector<double> w(dcis.size());
            double wsum = 0;
            for (size_t i = 0; i < dcis.size(); ++i)
            {
                total += dcis[i].m_rbLen;
                start = std::min<int>(start, dcis[i].m_rbStart);
                auto it = UlWeights().find(dcis[i].m_rnti);
                w[i] = it == UlWeights().end() ? 1.0 : std::max(0.0, it->second);
                wsum += w[i];
            }
            if (wsum <= 0)
            {
                std::fill(w.begin(), w.end(), 1.0);
                wsum = static_cast<double>(w.size());
            }
            // Every UE the round-robin scheduler granted keeps a floor of RBs (a UE left
            // without its grant would wait for a fresh buffer report, i.e. a TCP timeout);
            // the rest is split in proportion to the weights (largest remainder).
            std::vector<int> n(dcis.size());
            int given = 0;
            for (size_t i = 0; i < dcis.size(); ++i)
            {
                n[i] = std::min<int>(kMinRbs, dcis[i].m_rbLen);
                given += n[i];
            }
            const int spare = total - given;
            std::vector<std::pair<double, size_t>> rest;
            for (size_t i = 0; i < dcis.size(); ++i)
            {
                double exact = spare * w[i] / wsum;
                int whole = static_cast<int>(std::floor(exact + 1e-9));
                n[i] += whole;
                given += whole;
                rest.emplace_back(-(exact - whole), i);
            }
            std::stable_sort(rest.begin(), rest.end());
            for (size_t j = 0; given < total && j < rest.size(); ++j, ++given)
            {
                n[rest[j].second] += 1;
            }
            std::vector<UlDciListElement_s> kept;
            std::vector<uint16_t> map(256, 0);
            int pos = start;
            for (size_t i = 0; i < dcis.size(); ++i)
            {
                if (n[i] <= 0)
                {
                    continue;
                }
                UlDciListElement_s d = dcis[i];
                d.m_rbStart = static_cast<uint8_t>(pos);
                d.m_rbLen = static_cast<uint8_t>(n[i]);
                d.m_mcs = static_cast<uint8_t>(McsFor(d.m_rnti, pos, n[i]));
                d.m_tbSize = static_cast<uint16_t>(m_amc->GetUlTbSizeFromMcs(d.m_mcs, n[i]) / 8);
                for (int r = pos; r < pos + n[i] && r < 256; ++r)
                {
                    map[r] = d.m_rnti;
                }
                pos += n[i];
                lastRbs[d.m_rnti] = static_cast<uint32_t>(n[i]);
                kept.push_back(d);
            }
            dcis = kept;
            m_maps[m_sfnSf] = map;
        }
        m_user->SchedUlConfigInd(out);
    }

    /// MCS from the UE's own last PUSCH SINR (lowest over its RBs), as ns-3's schedulers do.
    int McsFor(uint16_t rnti, int, int)
    {
        auto it = m_sinr.find(rnti);
        if (it == m_sinr.end())
        {
            return 0; // no report yet: the most robust MCS
        }
        double minSinr = it->second;
        double s = std::log2(1 + (std::pow(10, minSinr / 10) / ((-std::log(5.0 * 0.00005)) / 1.5)));
        int cqi = m_amc->GetCqiFromSpectralEfficiency(s);
        if (cqi == 0)
        {
            return 0;
        }
        return m_amc->GetMcsFromCqi(cqi);
    }

    void LearnSinr(const FfMacSchedSapProvider::SchedUlCqiInfoReqParameters& p)
    {
        if (p.m_ulCqi.m_type != UlCqi_s::PUSCH)
        {
            return;
        }
        auto it = m_maps.find(p.m_sfnSf);
        if (it == m_maps.end())
        {
            return;
        }
        std::map<uint16_t, double> low;
        for (size_t r = 0; r < p.m_ulCqi.m_sinr.size() && r < it->second.size(); ++r)
        {
            uint16_t rnti = it->second[r];
            if (rnti == 0)
            {
                continue;
            }
            double sinr = LteFfConverter::fpS11dot3toDouble(p.m_ulCqi.m_sinr[r]);
            auto l = low.find(rnti);
            low[rnti] = l == low.end() ? sinr : std::min(l->second, sinr);
        }
        for (auto& kv : low)
        {
            m_sinr[kv.first] = kv.second;
        }
        m_maps.erase(it);
    }

    Ptr<RrFfMacScheduler> m_inner;
    Ptr<LteAmc> m_amc;
    FfMacSchedSapUser* m_user;
    ProxyUser m_proxyUser;
    ProxyProvider m_proxyProvider;
    uint16_t m_sfnSf = 0;
    std::map<uint16_t, std::vector<uint16_t>> m_maps;
    std::map<uint16_t, double> m_sinr;
};

/// Force the TypeId registration (so that LteHelper can create the scheduler by name).
inline std::string
RegisterTypes()
{
    return UlShareScheduler::GetTypeId().GetName() + " " + ChunkSender::GetTypeId().GetName() +
           " " + ChunkSink::GetTypeId().GetName() + " " + ChunkHeader::GetTypeId().GetName();
}

inline Ptr<ChunkSender>
NewSender()
{
    return CreateObject<ChunkSender>();
}

inline Ptr<ChunkSink>
NewSink()
{
    return CreateObject<ChunkSink>();
}

} // namespace owin
