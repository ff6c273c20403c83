// owin-cosim's C++ side inside ns-3, compiled at run time by cppyy (cppyy.cppdef).
//
// - ChunkSender: an application on a device that sends the chunks handed to it, in
//   order, over TCP (a byte stream, BulkSend-like) or UDP (paced packets, each with a
//   SeqTsSizeHeader: seq = chunk id, size = end offset of the packet in its chunk).
// - ChunkSink: an application at the edge server, one per device, that turns received
//   bytes into per-chunk deliveries (first and last byte time, bytes, losses) and stops
//   the simulator at each delivery, so the coordinator can react before going on.
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
    uint64_t lost;
};

/// Shared state between Python and the applications of one simulation.
struct Hub
{
    std::vector<ChunkDelivery> done;
    bool stopOnDelivery = true;
    uint64_t bytesReceived = 0;

    void Clear()
    {
        done.clear();
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

class ChunkSink : public Application
{
  public:
    static TypeId GetTypeId()
    {
        static TypeId tid =
            TypeId("owin::ChunkSink").SetParent<Application>().SetGroupName("Owin");
        return tid;
    }

    void Configure(uint32_t device, uint16_t port, bool tcp)
    {
        m_device = device;
        m_port = port;
        m_tcp = tcp;
    }

    /// A chunk will come, after those already expected (called at submission).
    void Expect(uint32_t chunk, uint64_t nbytes, double submit)
    {
        if (nbytes == 0)
        {
            return; // a warm-up call (see Warm-up in ns3_worker.py); chunks are never empty
        }
        Pending p;
        p.chunk = chunk;
        p.nbytes = nbytes;
        p.submit = submit;
        p.start = m_expectedEnd;
        m_expectedEnd += nbytes;
        m_pending.push_back(p);
    }

    /// UDP: the sender finished a chunk long ago and its tail never came: close it.
    void Expire(uint32_t chunk)
    {
        for (auto& p : m_pending)
        {
            if (p.chunk == chunk)
            {
                CloseUpTo(chunk);
                return;
            }
        }
    }

  private:
    struct Pending
    {
        uint32_t chunk;
        uint64_t nbytes;
        double submit;
        uint64_t start;
        uint64_t received = 0;
        double first = -1.0;
        double lastRx = -1.0;
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
                SeqTsSizeHeader h;
                packet->RemoveHeader(h);
                OnDatagram(h.GetSeq(), h.GetSize(), packet->GetSize());
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
            Deliver(p, now, 0);
            m_pending.pop_front();
        }
    }

    void OnDatagram(uint32_t chunk, uint64_t endOffset, uint32_t payload)
    {
        const double now = Simulator::Now().GetSeconds();
        TheHub().bytesReceived += payload;
        for (auto& p : m_pending)
        {
            if (p.chunk != chunk)
            {
                continue;
            }
            if (p.first < 0)
            {
                p.first = now;
            }
            p.received += payload;
            p.lastRx = now;
            if (endOffset >= p.nbytes)
            {
                CloseUpTo(chunk);
            }
            else
            {
                // Any earlier chunk still open lost its tail: a later chunk is arriving.
                CloseBefore(chunk);
            }
            return;
        }
    }

    void CloseBefore(uint32_t chunk)
    {
        const double now = Simulator::Now().GetSeconds();
        while (!m_pending.empty() && m_pending.front().chunk != chunk)
        {
            Pending& p = m_pending.front();
            Deliver(p, now, p.nbytes - std::min(p.nbytes, p.received));
            m_pending.pop_front();
        }
    }

    void CloseUpTo(uint32_t chunk)
    {
        CloseBefore(chunk);
        if (!m_pending.empty())
        {
            Pending& p = m_pending.front();
            Deliver(p, Simulator::Now().GetSeconds(), p.nbytes - std::min(p.nbytes, p.received));
            m_pending.pop_front();
        }
    }

    void Deliver(Pending& p, double now, uint64_t lost)
    {
        ChunkDelivery d{m_device, p.chunk, p.nbytes, p.submit, p.first < 0 ? now : p.first, now,
                        lost};
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
                   double udpLossTimeout, Ptr<ChunkSink> sink)
    {
        m_peer = peer;
        m_tcp = tcp;
        m_segment = segment;
        m_udpRate = udpRateBps;
        m_udpLossTimeout = udpLossTimeout;
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
            SendDatagram();
        }
    }

    void SendDatagram()
    {
        if (m_queue.empty())
        {
            return;
        }
        Item& it = m_queue.front();
        uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(it.nbytes - it.sent, m_segment));
        Ptr<Packet> p = Create<Packet>(n);
        SeqTsSizeHeader h;
        h.SetSeq(it.chunk);
        h.SetSize(it.sent + n);
        p->AddHeader(h);
        m_socket->Send(p);
        it.sent += n;
        if (it.sent >= it.nbytes)
        {
            Simulator::Schedule(Seconds(m_udpLossTimeout), &ChunkSink::Expire, m_sink, it.chunk);
            m_queue.pop_front();
        }
        if (!m_queue.empty())
        {
            m_next = Simulator::Schedule(Seconds((n + h.GetSerializedSize()) * 8.0 / m_udpRate),
                                         &ChunkSender::SendDatagram, this);
        }
    }

    Address m_peer;
    bool m_tcp = true;
    uint32_t m_segment = 1448;
    double m_udpRate = 50e6;
    double m_udpLossTimeout = 0.2;
    Ptr<ChunkSink> m_sink;
    Ptr<Socket> m_socket;
    bool m_connected = false;
    std::deque<Item> m_queue;
    uint64_t m_released = 0;
    EventId m_next;
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
           " " + ChunkSink::GetTypeId().GetName();
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
